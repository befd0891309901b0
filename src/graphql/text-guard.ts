import { type DocumentNode, GraphQLError, Kind, visit } from 'graphql';
import type { Plugin } from 'graphql-yoga';

/** A UTF-16 surrogate without its pair: not Unicode text, and Prisma cannot serialise it. */
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/** Postgres text and jsonb cannot hold NUL. */
const unstorable = (text: string) => text.includes('\u0000') || LONE_SURROGATE.test(text);

/** Every string of the variables, object keys included; iterative, so nesting depth is no risk. */
function variablesHaveUnstorable(variables: unknown): boolean {
  const stack: unknown[] = [variables];
  while (stack.length > 0) {
    const value = stack.pop();
    if (typeof value === 'string') {
      if (unstorable(value)) return true;
    } else if (value !== null && typeof value === 'object') {
      for (const [key, item] of Object.entries(value)) {
        if (unstorable(key)) return true;
        stack.push(item);
      }
    }
  }
  return false;
}

/**
 * Documents already checked. Yoga's parser cache hands out the same (never mutated) document
 * for the same query text, so a client's repeated operation is walked once, not per request.
 */
const checkedDocuments = new WeakMap<DocumentNode, boolean>();

function documentHasUnstorable(document: DocumentNode): boolean {
  const known = checkedDocuments.get(document);
  if (known !== undefined) return known;
  let found = false;
  visit(document, {
    [Kind.STRING]: (node) => {
      if (unstorable(node.value)) found = true;
    },
  });
  checkedDocuments.set(document, found);
  return found;
}

/**
 * Text no column can hold is refused before any resolver runs, for every argument at once
 * (chat content, search, memory edits, persona fields and traits): otherwise it surfaces as a
 * masked 500 from whichever write or query meets it first.
 */
export function useStorableText(): Plugin {
  const refuse = (
    variables: unknown,
    document: DocumentNode,
    stop: (result: { errors: GraphQLError[] }) => void,
  ) => {
    if (variablesHaveUnstorable(variables) || documentHasUnstorable(document)) {
      stop({
        errors: [
          new GraphQLError('Text must not contain NUL characters or unpaired UTF-16 surrogates.', {
            extensions: { code: 'BAD_USER_INPUT' },
          }),
        ],
      });
    }
  };
  return {
    onExecute: ({ args, setResultAndStopExecution }) =>
      refuse(args.variableValues, args.document, setResultAndStopExecution),
    // Subscriptions (sendMessageStream) do not pass through onExecute.
    onSubscribe: ({ args, setResultAndStopExecution }) =>
      refuse(args.variableValues, args.document, setResultAndStopExecution),
  };
}
