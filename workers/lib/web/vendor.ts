// The chart library's browser files, served from node_modules (the browser reaches no CDN; their
// package exports do not list the builds, hence plain paths). Vega compiles chart expressions
// with Function unless it is given an interpreter, and the page's Content-Security-Policy
// forbids eval, so the browser draws with vega-interpreter. That package ships only as an ES
// module importing 'vega-util' by its bare name, which a browser cannot resolve: its import is
// rewritten to read the same functions off the `vega` global that vega's UMD build defines
// (vega bundles vega-util and exports all of it). Rewritten once, when the server starts.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export interface VendorAsset {
  /** a file to stream, or a body made at startup */
  file?: string;
  body?: string;
}

const VEGA_UTIL_IMPORT = /^import\s*\{([^}]*)\}\s*from\s*['"]vega-util['"];?\s*$/m;

/**
 * vega-interpreter's module with its `vega-util` import taken from `globalThis.vega`. Any other
 * import (a new version with new dependencies) is an error, so it cannot reach the browser broken.
 */
export function rewriteInterpreter(source: string): string {
  const match = VEGA_UTIL_IMPORT.exec(source);
  if (!match) throw new Error("vega-interpreter: expected one `import { ... } from 'vega-util'` to rewrite, found none");
  const names = match[1]!
    .split(',')
    .map((n) => n.trim())
    .filter(Boolean);
  for (const n of names) {
    if (!/^[A-Za-z_$][\w$]*$/.test(n)) throw new Error(`vega-interpreter: cannot rewrite the imported name "${n}" (renamed imports are not expected)`);
  }
  const binding =
    `const { ${names.join(', ')} } = globalThis.vega;\n` +
    `for (const [name, value] of Object.entries({ ${names.join(', ')} })) {\n` +
    '  if (value === undefined) throw new Error(`vega.min.js does not export ${name}, which vega-interpreter needs`);\n' +
    '}';
  const rewritten = source.replace(VEGA_UTIL_IMPORT, binding);
  const left = /^\s*import[\s{*'"]/m.exec(rewritten);
  if (left) throw new Error(`vega-interpreter: an import the browser cannot resolve is left: ${rewritten.slice(left.index, left.index + 80)}`);
  return rewritten;
}

export function vendorAssets(modules: string): Record<string, VendorAsset> {
  return {
    'vega.min.js': { file: join(modules, 'vega', 'build', 'vega.min.js') },
    'vega-lite.min.js': { file: join(modules, 'vega-lite', 'build', 'vega-lite.min.js') },
    'vega-embed.min.js': { file: join(modules, 'vega-embed', 'build', 'vega-embed.min.js') },
    'vega-interpreter.js': { body: rewriteInterpreter(readFileSync(join(modules, 'vega-interpreter', 'build', 'vega-interpreter.js'), 'utf8')) },
  };
}
