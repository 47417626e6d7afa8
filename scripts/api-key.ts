/**
 * `npm run api-key`: prints a new random API key, to put in API_ADMIN_KEY (the Secret of a
 * cluster, or the environment of `npm start`). Nothing is stored: the API stores the key's hash
 * when it starts with it. Further keys are created through the API (POST /api/v1/api-keys).
 */
import { generateKey } from '../src/api/keys.js';

console.log(generateKey().key);
