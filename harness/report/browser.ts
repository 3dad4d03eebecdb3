/**
 * The headless browser of the HTML report's browser test: Debian's `chromium` package (its
 * binary /usr/bin/chromium), or the one ROOTPROBE_CHROMIUM names. Installed only for those who
 * want that test: `npx rootprobe doctor --install --browser` (as root).
 */
import { findCommand } from '../host.ts';

export const BROWSER_PACKAGE = 'chromium';

export const BROWSER_INSTALL_HINT =
  `install Debian's ${BROWSER_PACKAGE} package: \`npx rootprobe doctor --install --browser\` as root ` +
  `(or \`apt-get install ${BROWSER_PACKAGE}\`), or point ROOTPROBE_CHROMIUM at a Chromium binary`;

/** The Chromium binary, or undefined when none is installed. */
export function findChromium(env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (env.ROOTPROBE_CHROMIUM) return findCommand(env.ROOTPROBE_CHROMIUM, [env.ROOTPROBE_CHROMIUM]);
  return findCommand('chromium', ['/usr/bin/chromium', '/usr/lib/chromium/chromium']);
}
