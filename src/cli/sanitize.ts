/**
 * Remote text (buyer names, message texts, CRM errors) printed to a terminal must not drive it:
 * an escape sequence in a buyer's name could clear the screen, move the cursor or fake lines of
 * output (issue 9, item 6). Every control character except line feed and tab is shown as a
 * visible `\x..`/`\u....` escape instead; so are bidirectional overrides, which reorder what
 * the reader sees.
 */
// C0 controls but \t and \n, DEL, C1 controls, and the bidi embedding/override/isolate marks.
const UNSAFE = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

export function printable(text: string): string {
  return text.replace(UNSAFE, (c) => {
    const code = c.charCodeAt(0);
    return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
  });
}
