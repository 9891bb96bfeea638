/**
 * A search result's product fields, read from the document's metadata JSON. The catalog writes
 * {title, price, category, attributes, ...} (see CatalogSource in capture.proto); other collections hold
 * any JSON or none, so every field is optional here and a missing title falls back to the text.
 */
export interface ProductFields {
  title: string;
  price: number | null;
  category: string | null;
  attributes: string[];
}

function parseObject(json: string): Record<string, unknown> {
  if (json.trim() === '') return {};
  try {
    const value: unknown = JSON.parse(json);
    return value !== null && typeof value === 'object' && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : {};
  } catch {
    // metadata is opaque to the capture service: unreadable JSON just has no product fields
    return {};
  }
}

export function productFields(metadataJson: string, text: string): ProductFields {
  const meta = parseObject(metadataJson);
  const title = typeof meta.title === 'string' && meta.title !== '' ? meta.title : text;
  const price = typeof meta.price === 'number' && Number.isFinite(meta.price) ? meta.price : null;
  const category = typeof meta.category === 'string' ? meta.category : null;
  const attributes = Array.isArray(meta.attributes)
    ? meta.attributes.filter((a): a is string => typeof a === 'string')
    : [];
  return { title, price, category, attributes };
}
