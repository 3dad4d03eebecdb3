/** Assertions on what a guest reported. */
export { rootprobeChai } from './chai-rootprobe.ts';
