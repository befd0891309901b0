import { builder } from '../builder.js';

interface ProviderInfoShape {
  embeddingsProvider: string;
  embeddingModel: string;
  chatProvider: string;
  extractionProvider: string;
}

const ProviderInfo = builder.objectRef<ProviderInfoShape>('ProviderInfo').implement({
  description: 'Which providers this server runs with. `offline` ones are built-in stand-ins.',
  fields: (t) => ({
    embeddingsProvider: t.exposeString('embeddingsProvider'),
    embeddingModel: t.exposeString('embeddingModel'),
    chatProvider: t.exposeString('chatProvider'),
    extractionProvider: t.exposeString('extractionProvider'),
  }),
});

builder.queryField('providerInfo', (t) =>
  t.field({
    type: ProviderInfo,
    authScopes: { admin: true },
    description: 'The configured embedding and LLM providers (admin).',
    resolve: (_root, _args, { services }) => ({
      embeddingsProvider: services.embedder.provider,
      embeddingModel: services.embedder.model,
      chatProvider: services.chat.provider,
      extractionProvider: services.extractor.provider,
    }),
  }),
);
