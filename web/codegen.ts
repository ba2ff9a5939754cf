// Typed operations from the service's own SDL (../src/schema). `npm run codegen:check` (part of
// `npm test`) fails when src/gql is stale, like the server's resolver types.
import type { CodegenConfig } from '@graphql-codegen/cli';

const config: CodegenConfig = {
  schema: '../src/schema/*.graphql',
  documents: ['src/**/*.{ts,tsx}', '!src/gql/**'],
  ignoreNoDocuments: false,
  generates: {
    'src/gql/': {
      preset: 'client',
      presetConfig: { fragmentMasking: false },
      // Only the types the page's operations use, with the enums and inputs they name: after a change to
      // those in ../src/schema, run `npm run codegen` here (`npm test` fails until then).
      config: { useTypeImports: true, enumsAsTypes: true, onlyOperationTypes: true, scalars: { DateTime: 'string' } },
    },
  },
};
export default config;
