import {
  type Document,
  isMap,
  isScalar,
  isSeq,
  type LineCounter,
  type Node,
  type Pair,
  Scalar,
  visit,
  type YAMLError,
} from 'yaml';

/** A YAML problem of backflow.yml, located at the line and column where it can be fixed. */
export interface SyntaxProblem {
  readonly line: number;
  readonly column: number;
  readonly message: string;
}

/**
 * Errors after which the document still has the structure the file shows: every other error of
 * the yaml package leaves the parser guessing, and the errors it reports after one are echoes of
 * the first (a single stray "}" yields one error per token that follows it).
 */
const LOCAL_ERRORS = new Set(['DUPLICATE_KEY']);

/**
 * The syntax problems of a parsed backflow.yml, in the order of the file: the duplicate keys,
 * then the first error that breaks the structure, if any (nothing after it is reported, as it
 * would be guesswork); with no such error, also the keys left empty by a stray ":". Positions
 * come from the parser's offsets through the same LineCounter that gives the `linePos` of its
 * pretty errors (parsed with `prettyErrors: false`, the errors carry no `linePos`).
 */
export function syntaxProblems(doc: Document.Parsed, counter: LineCounter, text: string): SyntaxProblem[] {
  // A stable sort: the parser lists several errors found at one offset cause first.
  const errors = [...doc.errors].sort((a, b) => a.pos[0] - b.pos[0]);
  const broken = errors.findIndex((error) => !LOCAL_ERRORS.has(error.code));
  const context = { doc, counter, text, errors };
  const problems = errors.slice(0, broken < 0 ? undefined : broken + 1).map((error) => describe(error, context));
  if (broken < 0) problems.push(...emptyKeys(doc, counter, text));
  // Placed where they can be fixed, problems may now come in another order than the errors.
  return problems.sort((a, b) => a.line - b.line || a.column - b.column);
}

interface Context {
  readonly doc: Document.Parsed;
  readonly counter: LineCounter;
  readonly text: string;
  readonly errors: readonly YAMLError[];
}

function describe(error: YAMLError, context: Context): SyntaxProblem {
  const { counter, text } = context;
  const at = (offset: number, message: string): SyntaxProblem => {
    const { line, col } = counter.linePos(offset);
    return { line, column: col, message };
  };
  const [start, end] = error.pos;
  switch (error.code) {
    case 'DUPLICATE_KEY': {
      const first = firstOfDuplicate(context.doc, start);
      if (!first) break;
      return at(
        start,
        `duplicate key "${first.key}": it is already set on line ${counter.linePos(first.offset).line} of the same map; keep one of the two`,
      );
    }
    case 'TAB_AS_INDENT':
      return at(start, 'a tab in the indentation: YAML indents with spaces only; replace the tab with spaces');
    case 'MISSING_CHAR': {
      // The parser reports an unclosed quote where the text ends; the fix is where it opens.
      if (!/quote/.test(error.message)) break;
      const quoted = innermost(context.doc, start, (node) => isScalar(node) && isQuoted(node));
      if (!quoted) break;
      const quote = text[quoted.range![0]]!;
      return at(
        quoted.range![0],
        `unclosed ${quote} quote: the value that starts here never ends; close it with ${quote} on the same line`,
      );
    }
    case 'BAD_INDENT': {
      if (/^Flow (map|sequence)/.test(error.message)) {
        // Reported where the parser gave up (often the next key); the fix is at the bracket.
        const flow = innermost(context.doc, start, (node) => (isMap(node) || isSeq(node)) && node.flow === true);
        if (!flow) break;
        const [open, close, what] = isMap(flow) ? ['{', '}', 'map'] : ['[', ']', 'list'];
        return at(
          flow.range![0],
          `the ${what} opened by "${open}" does not end where YAML expects: close it with "${close}", and indent each line that continues it more than its key`,
        );
      }
      if (/same column/.test(error.message)) {
        // Reported at the start of the line; the key itself is after the spaces.
        return at(
          skipSpaces(text, start),
          'this key is not lined up with the keys above it: indent it with as many spaces as the other keys of its map',
        );
      }
      break;
    }
    case 'BLOCK_AS_IMPLICIT_KEY':
    case 'MULTILINE_IMPLICIT_KEY': {
      if (/block sequence/.test(error.message)) {
        return at(
          skipSpaces(text, start),
          'a list item ("- …") among the keys of a map: put the list under its key, indented more than the key',
        );
      }
      if (error.code === 'BLOCK_AS_IMPLICIT_KEY' && !/^Nested mappings/.test(error.message)) break;
      // Both codes describe one problem: the text from here on was read as a key spanning lines.
      const multiline = context.errors.find((e) => e.code === 'MULTILINE_IMPLICIT_KEY' && e.pos[0] === start);
      const words = lineFrom(text, start);
      if (error.code === 'BLOCK_AS_IMPLICIT_KEY' && !multiline) {
        return at(
          start,
          `a second ": " on one line: quote a value that contains ": " (for example "${words.replaceAll('"', '\\"')}")`,
        );
      }
      const nextLine = counter.linePos((multiline ?? error).pos[1]).line;
      if (error.code === 'BLOCK_AS_IMPLICIT_KEY') {
        return at(
          start,
          `"${words}" is followed by line ${nextLine}, which is indented more: a key takes a value on its own line or a nested block below it, not both; check the indentation of line ${nextLine}`,
        );
      }
      return at(
        start,
        `"${words}" runs on into line ${nextLine} and YAML reads both as one key: a key and its ":" must be on one line, with a space after the ":" (key: value); check the indentation of line ${nextLine}`,
      );
    }
    case 'MULTIPLE_DOCS':
      return at(
        start,
        'a second YAML document starts here ("---"): backflow.yml is one document; remove this line, or merge what follows into the first document',
      );
    case 'UNEXPECTED_TOKEN': {
      const token = text.slice(start, end);
      if (token === '}' || token === ']') {
        return at(start, `"${token}" closes nothing: remove it, or open its "${token === '}' ? '{' : '['}" before`);
      }
      return at(
        start,
        `unexpected "${token}": YAML cannot place it here; check the indentation and the brackets of this line and the one above`,
      );
    }
  }
  return at(start, error.message);
}

function isQuoted(node: Scalar): boolean {
  return node.type === Scalar.QUOTE_DOUBLE || node.type === Scalar.QUOTE_SINGLE;
}

/** The node that matches and starts last before `offset`, among those whose range reaches it. */
function innermost(doc: Document.Parsed, offset: number, test: (node: Node) => boolean): Node | undefined {
  let found: Node | undefined;
  visit(doc, (_key, node) => {
    const range = (node as Node).range;
    if (!range || !test(node as Node)) return;
    if (range[0] < offset && offset <= range[2] && (!found || range[0] > found.range![0])) found = node as Node;
  });
  return found;
}

/** For the second of two equal keys (its key at `offset`), the key and where the first one is. */
function firstOfDuplicate(doc: Document.Parsed, offset: number): { key: string; offset: number } | undefined {
  let found: { key: string; offset: number } | undefined;
  visit(doc, {
    Map(_key, map) {
      const second = map.items.find((pair) => (pair.key as Node | null)?.range?.[0] === offset);
      if (!second || !isScalar(second.key)) return;
      const name = String(second.key.value);
      const first = map.items.find((pair) => isScalar(pair.key) && String(pair.key.value) === name);
      if (first && first !== second) found = { key: name, offset: (first.key as Node).range![0] };
      return visit.BREAK;
    },
  });
  return found;
}

/** Keys left empty, as a stray ":" alone on a line makes them: valid YAML, never a Backflow key. */
function emptyKeys(doc: Document.Parsed, counter: LineCounter, text: string): SyntaxProblem[] {
  const problems: SyntaxProblem[] = [];
  visit(doc, {
    Pair(_key, pair: Pair) {
      // The parser gives an empty key a null scalar placed where the previous token ends.
      const key = pair.key as Node | null;
      if (!isScalar(key) || key.value !== null || key.source !== '' || !key.range) return;
      const blank = /^(?:\s|#.*)*/.exec(text.slice(key.range[0]))![0].length;
      const { line, col } = counter.linePos(key.range[0] + blank);
      problems.push({
        line,
        column: col,
        message: '":" without a key before it: write the key (key: value) or remove the ":"',
      });
    },
  });
  return problems;
}

/** The offset of the first character after the spaces at `offset`. */
function skipSpaces(text: string, offset: number): number {
  let at = offset;
  while (text[at] === ' ') at++;
  return at;
}

/** The text from `offset` to the end of its line, shortened for a message. */
function lineFrom(text: string, offset: number): string {
  const rest = text.slice(offset).split(/\r?\n/, 1)[0]!.trim();
  return rest.length > 40 ? `${rest.slice(0, 39)}…` : rest;
}
