/** Metadata key of the shared secret between Loupe's processes (LOUPE_SERVICE_TOKEN). */
export const SERVICE_TOKEN_METADATA_KEY = 'loupe-service-token';
