import { startServer } from './server.js';

// The server itself is src/server.ts; `npm run build` replaces this file's compiled form with
// a launcher that loads the bundled server through a V8 code cache (scripts/bundle.ts).
startServer();
