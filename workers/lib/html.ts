// HTML built from strings with every interpolated value escaped unless it is marked as markup:
// model outputs and dataset text render as text, never as tags or script.

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

export const escapeHtml = (text: string) => text.replace(/[&<>"']/g, (c) => ESCAPES[c]!);

/** Markup that is already safe (built by `html`, or an SVG drawn by vega). */
export class Markup {
  constructor(readonly value: string) {}
  toString() {
    return this.value;
  }
}

export const trusted = (value: string) => new Markup(value);

type Part = Markup | string | number | boolean | null | undefined | Part[];

const render = (p: Part): string =>
  p instanceof Markup ? p.value : Array.isArray(p) ? p.map(render).join('') : p === null || p === undefined || p === false ? '' : escapeHtml(String(p));

/** Tagged template: `html\`<td>${prediction}</td>\`` escapes the prediction. */
export function html(strings: TemplateStringsArray, ...values: Part[]): Markup {
  return new Markup(strings.reduce((acc, s, i) => acc + s + (i < values.length ? render(values[i]!) : ''), ''));
}

/** JSON for a <script type="application/json"> block: nothing in it can close the element. */
export const scriptJson = (value: unknown) => trusted(JSON.stringify(value).replace(/</g, '\\u003c'));
