/** Where the browser keeps the API key typed on the Jobs page (sent as a Bearer token with mutations). */
export const API_KEY_STORAGE = 'loupe.apiKey';
