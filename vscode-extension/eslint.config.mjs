// @ts-check
import eslint from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
    { ignores: ['dist/', 'out/', 'node_modules/', 'e2e/artifacts/'] },
    eslint.configs.recommended,
    ...tseslint.configs.recommendedTypeChecked,
    {
        languageOptions: {
            parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
        },
        rules: {
            eqeqeq: 'error',
            curly: 'error',
            'no-console': 'error',
            '@typescript-eslint/no-floating-promises': 'error',
            '@typescript-eslint/explicit-module-boundary-types': 'error',
        },
    },
    {
        files: ['test/**/*.ts'],
        rules: {
            // node:test's describe and it return promises that the runner itself awaits.
            '@typescript-eslint/no-floating-promises': ['error', {
                allowForKnownSafeCalls: [{ from: 'package', package: 'node:test', name: ['describe', 'it'] }],
            }],
        },
    },
    {
        // Plain Node scripts: the bundler config and the end-to-end test.
        files: ['**/*.mjs'],
        extends: [tseslint.configs.disableTypeChecked],
        languageOptions: {
            globals: { process: 'readonly', console: 'readonly', URL: 'readonly', setTimeout: 'readonly', clearTimeout: 'readonly', fetch: 'readonly' },
        },
        rules: { 'no-console': 'off' },
    },
);
