import { z } from 'zod';
import { type Logger, silentLogger } from '../../logger.js';
import { HttpError, postJson, postStream, type RetryPolicy } from '../http.js';
import { readChatStream, type StreamedReply } from './sse.js';
import {
  type ChatCompletion,
  type ChatMessage,
  type ChatModel,
  type ChatRequest,
  LlmError,
} from './types.js';

export interface OpenRouterOptions {
  apiKey: string;
  /** e.g. https://openrouter.ai/api/v1 */
  baseUrl: string;
  model: string;
  /** Tried in order when the primary model fails (after its retries). */
  fallbackModels: readonly string[];
  timeoutMs: number;
  maxRetries: number;
  logger?: Logger;
  /** Sent as X-Title: OpenRouter's app attribution. */
  appName?: string;
  /** Sent as HTTP-Referer: OpenRouter identifies apps by URL. */
  appUrl?: string;
  /** Defaults for every call; per-call options win. */
  temperature?: number;
  maxTokens?: number;
  retry?: Partial<RetryPolicy>;
}

export interface ChatOptions {
  /** Replaces the configured primary model for this call; configured fallbacks still follow. */
  model?: string;
  temperature?: number;
  maxTokens?: number;
  /**
   * 'json_object' asks for a JSON reply (memory extraction). Not every model honours it, so
   * callers must still parse defensively.
   */
  responseFormat?: 'text' | 'json_object';
  signal?: AbortSignal;
}

const completionSchema = z.object({
  model: z.string().optional(),
  choices: z.array(
    z.object({
      message: z.object({ content: z.string().nullish() }).nullish(),
      finish_reason: z.string().nullish(),
    }),
  ),
  usage: z
    .object({ prompt_tokens: z.number().nullish(), completion_tokens: z.number().nullish() })
    .nullish(),
});

/**
 * OpenRouter's OpenAI-compatible chat API. Fallbacks are tried here, not with OpenRouter's own
 * `models` routing, so that each model gets our timeouts and retries and logs say who answered.
 */
export class OpenRouterChatModel implements ChatModel {
  readonly provider = 'openrouter';
  readonly #options: OpenRouterOptions;
  readonly #url: string;
  readonly #logger: Logger;
  readonly #headers: Record<string, string>;

  constructor(options: OpenRouterOptions) {
    this.#options = options;
    this.#url = `${options.baseUrl.replace(/\/+$/, '')}/chat/completions`;
    this.#logger = options.logger ?? silentLogger;
    this.#headers = {
      ...(options.appUrl ? { 'HTTP-Referer': options.appUrl } : {}),
      ...(options.appName ? { 'X-Title': options.appName } : {}),
    };
  }

  complete(request: ChatRequest): Promise<ChatCompletion> {
    return this.chat(request.messages, { signal: request.signal });
  }

  /** The lower-level call: extraction uses it with its own model and `responseFormat`. */
  chat(messages: readonly ChatMessage[], options: ChatOptions = {}): Promise<ChatCompletion> {
    return this.#withFallbacks(options.model, (model) =>
      this.#completeWith(model, messages, options),
    );
  }

  stream(request: ChatRequest, onDelta: (text: string) => void): Promise<ChatCompletion> {
    let delivered = false;
    const deliver = (text: string) => {
      delivered = true;
      onDelta(text);
    };
    // Once the caller has part of one model's reply, another model's would not continue it.
    return this.#withFallbacks(
      undefined,
      (model) => this.#streamWith(model, request, deliver, () => delivered),
      () => !delivered,
    );
  }

  async #withFallbacks(
    primary: string | undefined,
    call: (model: string) => Promise<ChatCompletion>,
    mayFallBack = () => true,
  ): Promise<ChatCompletion> {
    const models = [...new Set([primary ?? this.#options.model, ...this.#options.fallbackModels])];
    const failures: LlmError[] = [];
    for (const [i, model] of models.entries()) {
      try {
        return await call(model);
      } catch (error) {
        if (!(error instanceof LlmError) || !fallbackCanHelp(error) || !mayFallBack()) throw error;
        failures.push(error);
        const next = models[i + 1];
        if (next) this.#logger.warn({ model, next, err: error.message }, 'openrouter falling back');
      }
    }
    // Transient if any model failed transiently: that one may answer on a later try.
    const retryable = failures.some((f) => f.retryable);
    const message = `openrouter: all models failed: ${failures.map((f) => f.message).join('; ')}`;
    throw new LlmError(message, retryable, { cause: failures.at(-1) });
  }

  #body(model: string, messages: readonly ChatMessage[], options: ChatOptions) {
    const responseFormat = options.responseFormat ?? 'text';
    return {
      model,
      messages,
      temperature: options.temperature ?? this.#options.temperature,
      max_tokens: options.maxTokens ?? this.#options.maxTokens,
      // Omitted for plain text: some providers reject the parameter altogether.
      response_format: responseFormat === 'text' ? undefined : { type: responseFormat },
    };
  }

  #request(model: string, signal: AbortSignal | undefined) {
    return {
      label: `openrouter ${model}`,
      url: this.#url,
      apiKey: this.#options.apiKey,
      headers: this.#headers,
      timeoutMs: this.#options.timeoutMs,
      maxRetries: this.#options.maxRetries,
      signal,
      logger: this.#logger,
      retry: this.#options.retry,
    };
  }

  async #completeWith(
    model: string,
    messages: readonly ChatMessage[],
    options: ChatOptions,
  ): Promise<ChatCompletion> {
    const started = performance.now();
    let json: unknown;
    try {
      const body = this.#body(model, messages, options);
      json = await postJson({ ...this.#request(model, options.signal), body });
    } catch (error) {
      if (!(error instanceof HttpError)) throw error;
      throw new LlmError(error.message, error.retryable, { cause: error });
    }
    const parsed = completionSchema.safeParse(json);
    if (!parsed.success) {
      const message = `openrouter ${model}: unexpected response shape`;
      throw new LlmError(message, true, { cause: parsed.error });
    }
    const choice = parsed.data.choices[0];
    return this.#finish(model, started, {
      content: choice?.message?.content ?? '',
      model: parsed.data.model ?? null,
      finishReason: choice?.finish_reason ?? null,
      promptTokens: parsed.data.usage?.prompt_tokens ?? null,
      completionTokens: parsed.data.usage?.completion_tokens ?? null,
    });
  }

  async #streamWith(
    model: string,
    request: ChatRequest,
    onText: (text: string) => void,
    delivered: () => boolean,
  ): Promise<ChatCompletion> {
    const started = performance.now();
    let reply: StreamedReply;
    try {
      reply = await postStream({
        ...this.#request(model, request.signal),
        body: {
          ...this.#body(model, request.messages, {}),
          stream: true,
          stream_options: { include_usage: true },
        },
        read: (chunks, commit) =>
          readChatStream(chunks, (text) => {
            commit();
            onText(text);
          }),
      });
    } catch (error) {
      if (!(error instanceof HttpError)) throw error;
      const partly = delivered() ? ', after part of the reply was delivered' : '';
      // The caller cancelled and will not want it again; any other failure is worth a retry.
      const retryable = error.kind !== 'aborted' && error.retryable;
      throw new LlmError(`${error.message}${partly}`, retryable, { cause: error });
    }
    return this.#finish(model, started, reply);
  }

  #finish(model: string, started: number, reply: StreamedReply): ChatCompletion {
    const content = reply.content.trim();
    if (!content) {
      // Seen with content filters and with reasoning models that spend max_tokens thinking.
      const reason = reply.finishReason ?? 'none';
      throw new LlmError(`openrouter ${model}: empty content (finish_reason ${reason})`, true);
    }
    const completion: ChatCompletion = {
      content,
      model: reply.model || model,
      promptTokens: reply.promptTokens,
      completionTokens: reply.completionTokens,
    };
    const { promptTokens, completionTokens } = completion;
    const ms = Math.round(performance.now() - started);
    this.#logger.debug(
      { model: completion.model, promptTokens, completionTokens, ms },
      'openrouter',
    );
    return completion;
  }
}

/**
 * Another model cannot fix a cancelled call, a bad key (401) or an empty balance (402). Any
 * other failure may be specific to this model or its providers (404 no endpoints, 400 provider
 * errors, 5xx, timeouts, empty replies), so the next model is worth a try.
 */
function fallbackCanHelp(error: LlmError): boolean {
  const cause = error.cause;
  if (!(cause instanceof HttpError)) return true;
  return cause.kind !== 'aborted' && cause.status !== 401 && cause.status !== 402;
}
