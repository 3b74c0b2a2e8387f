/**
 * The lexical part of the build file (`wrenn.template`): logical lines (a `\` at the end of a
 * line continues it), comments (a `#` at the start of a line, or after whitespace outside
 * quotes), and shell-like words with '…' and "…" quoting. Pure: text in, lines out.
 */

/** One instruction's line, with the number of its first physical line for error messages. */
export interface LogicalLine {
  line: number;
  text: string;
}

/** A mistake in the build file, pointing at its line. */
export class BuildFileError extends Error {
  override readonly name = "BuildFileError";
  readonly code = "invalid_build_file";
  readonly line: number;

  constructor(line: number, message: string) {
    super(`line ${line}: ${message}`);
    this.line = line;
  }
}

/** Cuts a comment off a line: `#` at its start or after whitespace, outside quotes. */
export function stripComment(text: string): string {
  let quote: '"' | "'" | undefined;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quote) {
      if (c === "\\" && quote === '"') i++;
      else if (c === quote) quote = undefined;
    } else if (c === "\\") {
      i++;
    } else if (c === '"' || c === "'") {
      quote = c;
    } else if (c === "#" && (i === 0 || /\s/.test(text[i - 1] ?? ""))) {
      return text.slice(0, i);
    }
  }
  return text;
}

/** Splits the file into instructions: continuations joined, comments and blank lines dropped. */
export function logicalLines(source: string): LogicalLine[] {
  const out: LogicalLine[] = [];
  let pending: LogicalLine | undefined;
  const physical = source.replace(/\r\n?/g, "\n").split("\n");
  for (const [i, raw] of physical.entries()) {
    const number = i + 1;
    // A whole-line comment inside a continued instruction is skipped, as Dockerfiles do.
    if (pending && /^\s*#/.test(raw)) continue;
    const text = stripComment(raw);
    const continued = /(^|[^\\])(\\\\)*\\\s*$/.test(text);
    const body = continued ? text.replace(/\\\s*$/, "") : text;
    if (pending) pending.text += ` ${body.trim()}`;
    else pending = { line: number, text: body.trim() };
    if (!continued) {
      if (pending.text.trim() !== "") out.push({ line: pending.line, text: pending.text.trim() });
      pending = undefined;
    }
  }
  if (pending) {
    throw new BuildFileError(pending.line, "the file ends inside a continued line (a trailing `\\`)");
  }
  return out;
}

/** Shell-like words: whitespace splits, '…' is literal, "…" and bare `\` escape the next character. */
export function splitWords(text: string, line: number): string[] {
  const words: string[] = [];
  let word = "";
  let inWord = false;
  let quote: '"' | "'" | undefined;
  for (let i = 0; i < text.length; i++) {
    const c = text[i] ?? "";
    if (quote === "'") {
      if (c === "'") quote = undefined;
      else word += c;
    } else if (quote === '"') {
      if (c === '"') quote = undefined;
      else if (c === "\\" && /["\\$`]/.test(text[i + 1] ?? "")) word += text[++i];
      else word += c;
    } else if (c === "'" || c === '"') {
      quote = c;
      inWord = true;
    } else if (c === "\\") {
      word += text[++i] ?? "";
      inWord = true;
    } else if (/\s/.test(c)) {
      if (inWord) words.push(word);
      word = "";
      inWord = false;
    } else {
      word += c;
      inWord = true;
    }
  }
  if (quote) throw new BuildFileError(line, `unterminated ${quote} quote`);
  if (inWord) words.push(word);
  return words;
}

/** Leading `--name=value` flags of an instruction's arguments, and the rest of the text. */
export function takeFlags(
  rest: string,
  allowed: readonly string[],
  line: number,
  keyword: string,
): { flags: Record<string, string>; rest: string } {
  const flags: Record<string, string> = {};
  let text = rest;
  for (;;) {
    const m = /^--([a-z-]+)=(\S+)\s*/.exec(text);
    if (!m) break;
    const [whole, name = "", value = ""] = m;
    if (!allowed.includes(name)) {
      const known = allowed.length ? allowed.map((a) => `--${a}`).join(", ") : "none";
      throw new BuildFileError(line, `${keyword}: unknown flag --${name} (allowed: ${known})`);
    }
    flags[name] = value;
    text = text.slice(whole.length);
  }
  return { flags, rest: text };
}
