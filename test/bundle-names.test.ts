import { describe, expect, it } from 'vitest';
import { restoreClassNames } from '../scripts/bundle-names.js';

/**
 * scripts/bundle-names.ts on esbuild's output shapes (the real bundle is exercised by
 * scripts/ci/production-smoke.sh): a class esbuild renamed gets its source name back, exactly
 * as `keepNames` would set it; classes whose name did not change are left alone.
 */
const withKeepNames = `var __name = (target, value) => __defProp(target, "name", { value, configurable: true });
    var GraphQLError16 = class _GraphQLError extends Error {
      static {
        __name(this, "GraphQLError");
      }
      constructor(message) { super(message); }
    };
    var DatabaseError2 = class extends Error {
      static {
        __name(this, "DatabaseError");
      }
    };
    class Client2 extends EventEmitter {
      static {
        __name(this, "Client");
      }
    }
    var constructor = class Pino {
      static {
        __name(this, "Pino");
      }
    };
  class Kept {
    static {
      __name(this, "Kept");
    }
  }`;

const withoutKeepNames = `    var GraphQLError16 = class _GraphQLError extends Error {
      constructor(message) { super(message); }
    };
    var DatabaseError2 = class extends Error {
    };
    class Client2 extends EventEmitter {
    }
    var constructor = class Pino {
    };
  class Kept {
  }`;

function evaluate(text: string): Record<string, { name: string }> {
  const body = `${text}
    return { GraphQLError16, DatabaseError2, Client2, constructor, Kept };`;
  return new Function('EventEmitter', body)(class {}) as Record<string, { name: string }>;
}

describe('restoreClassNames', () => {
  it('gives renamed classes their source names and leaves the others as they are', () => {
    // Without help, names follow what esbuild emitted.
    const plain = evaluate(withoutKeepNames);
    expect(plain.GraphQLError16?.name).toBe('_GraphQLError');
    expect(plain.DatabaseError2?.name).toBe('DatabaseError2');

    const { text, restored } = restoreClassNames(withKeepNames, withoutKeepNames);
    expect(restored.sort()).toEqual(['Client', 'DatabaseError', 'GraphQLError']);
    const fixed = evaluate(text);
    expect(fixed.GraphQLError16?.name).toBe('GraphQLError');
    expect(fixed.DatabaseError2?.name).toBe('DatabaseError');
    expect(fixed.Client2?.name).toBe('Client');
    expect(fixed.constructor?.name).toBe('Pino');
    expect(fixed.Kept?.name).toBe('Kept');
    // The same attributes keepNames' __name gives (configurable, not writable or enumerable).
    expect(Object.getOwnPropertyDescriptor(fixed.DatabaseError2, 'name')).toEqual({
      value: 'DatabaseError',
      configurable: true,
      writable: false,
      enumerable: false,
    });
  });

  it('fails the build when a renamed class cannot be found', () => {
    expect(() =>
      restoreClassNames(withKeepNames, withoutKeepNames.replace('class Client2', 'class Other')),
    ).toThrow(/Client/);
  });
});
