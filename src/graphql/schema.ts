import { builder } from './builder.js';
import './types/user.js';
import './types/persona.js';
import './types/persona-instance.js';
import './types/chat-session.js';
import './types/message.js';
import './types/memory.js';
import './types/memory-queries.js';
import './types/memory-mutations.js';
import './types/data-rights.js';
import './types/memory-remember.js';
import './types/memory-events.js';
import './types/follow-up.js';
import './types/chat.js';
import './types/job.js';
import './types/provider-info.js';
import './types/admin.js';

export const schema = builder.toSchema({ sortSchema: true });
