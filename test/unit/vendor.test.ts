// The browser's copy of vega-interpreter: its bare 'vega-util' import rewritten to the `vega`
// global, and nothing the browser could not resolve left behind.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { repoRoot } from '../../workers/lib/paths';
import { rewriteInterpreter, vendorAssets } from '../../workers/lib/web/vendor';

describe('rewriteInterpreter', () => {
  it('turns the installed vega-interpreter into a module that imports nothing', () => {
    const source = readFileSync(join(repoRoot, 'node_modules', 'vega-interpreter', 'build', 'vega-interpreter.js'), 'utf8');
    const out = rewriteInterpreter(source);
    assert.doesNotMatch(out, /^\s*import\b/m);
    assert.match(out, /^const \{ ascending, isString, DisallowedObjectProperties \} = globalThis\.vega;$/m);
    assert.match(out, /export \{ expression as expressionInterpreter \};/);
    // everything else is the package's own code, unchanged
    assert.equal(out.split('\n').slice(-20).join('\n'), source.split('\n').slice(-20).join('\n'));
    assert.equal(vendorAssets(join(repoRoot, 'node_modules'))['vega-interpreter.js']!.body, out);
  });

  it('names the names it reads off the vega global, and fails in the page if one is missing', () => {
    const out = rewriteInterpreter("import { a, b } from 'vega-util';\nconst c = a(b);\nexport { c };\n");
    const vega = { a: (x: number) => x + 1, b: 1 };
    const run = (g: object) => new Function('globalThis', out.replace(/^export .*$/m, 'return c;'))(g) as number;
    assert.equal(run({ vega }), 2);
    assert.throws(() => run({ vega: { a: vega.a } }), /vega\.min\.js does not export b/);
  });

  it('refuses a version that imports anything else, or nothing from vega-util', () => {
    assert.throws(
      () => rewriteInterpreter("import { a } from 'vega-util';\nimport { d } from 'd3-array';\n"),
      /an import the browser cannot resolve is left: import \{ d \}/,
    );
    assert.throws(() => rewriteInterpreter('export const x = 1;\n'), /expected one `import \{ \.\.\. \} from 'vega-util'`/);
    assert.throws(() => rewriteInterpreter("import { a as b } from 'vega-util';\n"), /cannot rewrite the imported name "a as b"/);
  });
});
