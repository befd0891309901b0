/** Where a local HTTP fake listens (test/fakes). */
interface Fake {
  url: string;
  apiKey: string;
}

/** Env that points the Voyage and/or OpenRouter clients at their fakes on 127.0.0.1. */
export function fakeProviderEnv(fakes: {
  voyage?: Fake;
  openrouter?: Fake;
}): Record<string, string> {
  const { voyage, openrouter } = fakes;
  return {
    ...(voyage
      ? {
          EMBEDDINGS_PROVIDER: 'voyage',
          VOYAGE_BASE_URL: voyage.url,
          VOYAGE_API_KEY: voyage.apiKey,
        }
      : {}),
    ...(openrouter
      ? {
          LLM_PROVIDER: 'openrouter',
          OPENROUTER_BASE_URL: openrouter.url,
          OPENROUTER_API_KEY: openrouter.apiKey,
        }
      : {}),
  };
}
