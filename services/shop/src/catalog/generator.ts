import { base, en, Faker } from '@faker-js/faker';
import { UserInputError } from '@loupe/common';
import { attributeSpec, TAXONOMY } from './taxonomy.js';

/** One generated product; `text` is what gets embedded (and what a capture job reads). */
export interface Product {
  id: string;
  title: string;
  description: string;
  category: string;
  productType: string;
  material: string;
  colour: string;
  size: string;
  /** USD */
  price: number;
  attributes: string[];
  text: string;
}

export interface CatalogOptions {
  /** default 3,000 */
  products?: number;
  /** default 1 */
  seed?: number;
}

export const DEFAULT_CATALOG_PRODUCTS = 3000;
export const DEFAULT_CATALOG_SEED = 1;
export const MAX_CATALOG_PRODUCTS = 100_000;

const TYPES = TAXONOMY.flatMap((category) => category.types.map((type) => ({ category, type })));

// How many attributes a product gets: most have one or two, so a query for an attribute has both
// matching and non-matching products of the same type to tell apart.
const ATTRIBUTE_COUNTS = [
  { weight: 2, value: 0 },
  { weight: 4, value: 1 },
  { weight: 3, value: 2 },
  { weight: 1, value: 3 },
];

export function catalogOptions(options: CatalogOptions = {}): Required<CatalogOptions> {
  const products = options.products || DEFAULT_CATALOG_PRODUCTS;
  const seed = options.seed || DEFAULT_CATALOG_SEED;
  if (!Number.isSafeInteger(products) || products < 1 || products > MAX_CATALOG_PRODUCTS)
    throw new UserInputError(`catalog size must be 1-${MAX_CATALOG_PRODUCTS} products, got ${products}`);
  if (!Number.isSafeInteger(seed) || seed < 0 || seed > 0xffffffff)
    throw new UserInputError(`catalog seed must be a whole number 0-${0xffffffff}, got ${seed}`);
  return { products, seed };
}

/**
 * The product catalog for a size and seed: every product is drawn from one product type of the
 * taxonomy (its material, colour, size, price and attributes from that type's lists), with faker as
 * the seeded random source. Same version of faker, same seed and size: the same products, byte for
 * byte. Product i does not depend on the catalog size (one faker stream, drawn in order), so a
 * larger catalog extends a smaller one.
 */
export function generateCatalog(options: CatalogOptions = {}): Product[] {
  const { products, seed } = catalogOptions(options);
  const faker = new Faker({ locale: [en, base] });
  faker.seed(seed);
  const digits = String(MAX_CATALOG_PRODUCTS - 1).length;
  const out: Product[] = [];
  for (let i = 0; i < products; i++) {
    const { category, type } = faker.helpers.arrayElement(TYPES);
    const count = Math.min(faker.helpers.weightedArrayElement(ATTRIBUTE_COUNTS), type.attributes.length);
    const chosen = new Set(faker.helpers.arrayElements(type.attributes, count));
    // taxonomy order, so the same set always reads the same way
    const attributes = type.attributes.filter((a) => chosen.has(a));
    const material = faker.helpers.arrayElement(type.materials);
    const colour = faker.helpers.arrayElement(type.colours);
    const size = faker.helpers.arrayElement(type.sizes);
    const price = faker.number.int({ min: type.price[0], max: type.price[1] }) - 0.01;
    const brand = faker.person.lastName();
    // at most two adjectives in the title; the description names every attribute
    const adjectives = attributes.slice(0, 2).map((a) => attributeSpec(a).adjective);
    const title = [brand, ...adjectives, titleCase(material), titleCase(type.name)].join(' ');
    const description = [
      `${capitalise(colour)} ${type.name} made of ${material}, size ${size}.`,
      type.use,
      ...attributes.map((a) => attributeSpec(a).phrase),
    ].join(' ');
    out.push({
      id: `p${String(i).padStart(digits, '0')}`,
      title,
      description,
      category: category.name,
      productType: type.name,
      material,
      colour,
      size,
      price: Math.max(0.99, Number(price.toFixed(2))),
      attributes,
      text: `${title}. ${description}`,
    });
  }
  return out;
}

/** One JSON object per line, in catalog order: a capture dataset (it has `text`) and a fixture file. */
export function catalogJsonl(products: readonly Product[]): string {
  return products.map((p) => `${JSON.stringify(p)}\n`).join('');
}

/** What IndexDocuments stores as a product's metadata_json (everything but the embedded text). */
export function productMetadata(product: Product): string {
  const { text: _text, ...metadata } = product;
  return JSON.stringify(metadata);
}

function titleCase(words: string): string {
  return words.replace(/(^|[\s-])([a-z])/g, (_m, sep: string, c: string) => sep + c.toUpperCase());
}

function capitalise(words: string): string {
  return words.charAt(0).toUpperCase() + words.slice(1);
}
