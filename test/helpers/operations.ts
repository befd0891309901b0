/** GraphQL operations the tests send, written as a client would. */
export const PERSONAS = /* GraphQL */ `
  query { viewer { id } personas(first: 10) { edges { node { id name slug } } } }`;

export const START_CHAT = /* GraphQL */ `
  mutation Start($personaId: ID!) {
    startChat(input: { personaId: $personaId }) {
      session { id }
      instance { id persona { name } }
    }
  }`;

export const SEND_MESSAGE = /* GraphQL */ `
  mutation Send($sessionId: ID!, $content: String!, $clientMessageId: String!) {
    sendMessage(input: { sessionId: $sessionId, content: $content, clientMessageId: $clientMessageId }) {
      userMessage { id role content }
      reply { id role content model }
      recalled {
        profile { score memory { id content layer category } }
        relationship { score memory { id content layer category } }
      }
    }
  }`;

export const PROFILE_MEMORIES = /* GraphQL */ `
  query Profile($userId: ID, $search: String, $category: MemoryCategory, $first: Int, $after: String) {
    profileMemories(userId: $userId, search: $search, category: $category, first: $first, after: $after) {
      edges { cursor score node { id content category layer } }
      pageInfo { hasNextPage endCursor }
    }
  }`;

export const RELATIONSHIP_MEMORIES = /* GraphQL */ `
  query Relationship($instanceId: ID!, $search: String) {
    relationshipMemories(instanceId: $instanceId, search: $search, first: 20) {
      edges { score node { id content category layer } }
    }
  }`;

export interface SendMessageData {
  sendMessage: {
    userMessage: { id: string; role: string; content: string };
    reply: { id: string; role: string; content: string; model: string };
    recalled: Record<
      'profile' | 'relationship',
      { score: number; memory: { id: string; content: string; layer: string; category: string } }[]
    >;
  };
}

export interface MemoryPage {
  edges: {
    cursor: string;
    score: number | null;
    node: { id: string; content: string; category: string; layer: string };
  }[];
  pageInfo: { hasNextPage: boolean; endCursor: string | null };
}
