/**
 * Errors meant for people. Each says what went wrong, with which input, and what to do.
 * The CLI maps them to exit codes: UsageError and SetupError exit 2.
 */

/** Bad input from the user: unknown scenario or kernel, a malformed option, an unsafe path. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/** The machine lacks something: a binary, a package, a kernel option. */
export class SetupError extends Error {
  override name = 'SetupError';
}

/** A scenario or image definition is wrong (duplicate names, a disk that does not fit...). */
export class DefinitionError extends Error {
  override name = 'DefinitionError';
}

export function isPeopleError(e: unknown): e is UsageError | SetupError | DefinitionError {
  return e instanceof UsageError || e instanceof SetupError || e instanceof DefinitionError;
}
