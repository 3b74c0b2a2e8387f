/**
 * What `wrenn sandbox exec <id> -- …` runs. The guest runs a shell command line, so argv
 * words must be quoted on the way in: `-- sh -c 'echo hi > f'` has to reach the guest as
 * three words, not as `sh -c echo` with the rest as arguments.
 */

const SAFE_WORD = /^[A-Za-z0-9_@%+=:,./-]+$/;

/** Quotes one word for a POSIX shell so the program receives it exactly as given. */
export function quoteShellWord(word: string): string {
  if (SAFE_WORD.test(word)) return word;
  return `'${word.replaceAll("'", `'\\''`)}'`;
}

/**
 * One word is a shell command line as written (`-- 'ls | wc -l'`); several are an argv,
 * each word quoted (`-- sh -c 'echo hi > f'`, `-- printf '%s\n' 'a b'`).
 */
export function commandLineOf(words: readonly string[]): string {
  if (words.length === 1) return words[0] ?? "";
  return words.map(quoteShellWord).join(" ");
}
