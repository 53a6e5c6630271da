import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'build/**', 'build-arm64/**', 'models/**', '.tap/**', 'native/third_party/**', '.cache/**', 'out/**', 'runs/**', '.devdata/**', 'prebuilds/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-constant-condition': ['error', { checkLoops: false }],
    },
  },
  {
    // Rules that need type information, on the TypeScript sources only (tsconfig.json covers src,
    // test and bench; the few .mjs scripts have no project). These catch the promise mistakes that
    // matter in a long-running service: a rejection nobody handles (crashes Node) and an async
    // callback where the caller ignores the returned promise (event handlers, timers).
    files: ['**/*.ts'],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: dirname(fileURLToPath(import.meta.url)) } },
    rules: {
      '@typescript-eslint/no-floating-promises': [
        'error',
        // tap queues subtests itself: `t.test(...)` is the documented way to declare one, its
        // promise resolves with the subtest's results and never rejects.
        { allowForKnownSafePromises: [{ from: 'package', name: 'PromiseWithSubtest', package: '@tapjs/core' }] },
      ],
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/await-thenable': 'error',
    },
  },
  {
    files: ['**/*.js', '**/*.cjs', '**/*.mjs'],
    languageOptions: {
      globals: Object.fromEntries(
        ['process', 'console', 'Buffer', 'URL', 'setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'setImmediate', 'clearImmediate'].map(
          (g) => [g, 'readonly'],
        ),
      ),
    },
  },
  {
    // The live view's page runs in a browser (src/view/page/): browser globals, no Node ones.
    files: ['src/view/page/**/*.js'],
    languageOptions: {
      sourceType: 'script',
      globals: Object.fromEntries(
        ['window', 'document', 'location', 'WebSocket', 'URL', 'URLSearchParams', 'Blob', 'Event', 'fetch', 'alert', 'atob', 'createImageBitmap', 'setTimeout'].map((g) => [g, 'readonly']),
      ),
    },
  },
);
