/** Whether a parsed JSON value is an object (not null, not an array): a JSON object's members can be read. */
export const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
