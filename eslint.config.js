// ESLint flat config: typescript-eslint's recommended rules (not the type-checked ones, to keep
// `npm run lint` fast) for the code, the tests, the benchmarks and the scripts; no formatter.
import js from '@eslint/js'
import tseslint from 'typescript-eslint'
import reactHooks from 'eslint-plugin-react-hooks'
import globals from 'globals'

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'bench/results/', 'test/fuzz-corpus/'] },
  js.configs.recommended,
  tseslint.configs.recommended,
  {
    languageOptions: { globals: globals.node },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      // `_` names a value left unused on purpose, as tsc's noUnusedParameters allows
      '@typescript-eslint/no-unused-vars': ['error', { varsIgnorePattern: '^_', argsIgnorePattern: '^_' }],
      // conventions the code already keeps everywhere: `== null` for null or undefined, type-only imports marked
      eqeqeq: ['error', 'always', { null: 'ignore' }],
      '@typescript-eslint/consistent-type-imports': 'error'
    }
  },
  {
    files: ['src/**'],
    // long lines are wrapped by hand; a URL is kept whole so that it can be copied
    rules: { 'max-len': ['error', { code: 140, ignoreUrls: true }] }
  },
  {
    files: ['src/tui/**/*.{ts,tsx}', 'test/tui*.{ts,tsx}'],
    plugins: reactHooks.configs.flat.recommended.plugins,
    rules: {
      ...reactHooks.configs.flat.recommended.rules,
      // an error, not the plugin's warning, so that CI stops on it
      'react-hooks/exhaustive-deps': 'error'
    }
  },
  {
    files: ['test/**'],
    // tests read JSON answers as `any` and let their assertions check the shape
    rules: { '@typescript-eslint/no-explicit-any': 'off' }
  }
)
