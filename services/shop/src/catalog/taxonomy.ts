/**
 * The hand-written product taxonomy behind the generated catalog: category → product types, each with
 * the materials, colours, sizes, price range and attributes that make sense for it. Generated products
 * only combine what a type lists, so a product's title, description, category and attributes agree
 * (plain faker commerce fields are drawn independently: "Steel Salad" in "Movies"), which is what makes
 * search relevance measurable.
 */

export interface AttributeSpec {
  /** the label products carry and queries ask for */
  name: string;
  /** how a title says it ("Waterproof") */
  adjective: string;
  /** a sentence the description uses for it */
  phrase: string;
}

export interface ProductTypeSpec {
  /** plural noun used in titles and queries ("hiking boots") */
  name: string;
  materials: readonly string[];
  colours: readonly string[];
  sizes: readonly string[];
  /** USD, inclusive */
  price: readonly [number, number];
  /** names from ATTRIBUTES; each product gets 0-3 of them */
  attributes: readonly string[];
  /** what it is for, one sentence */
  use: string;
}

export interface CategorySpec {
  name: string;
  types: readonly ProductTypeSpec[];
}

export const ATTRIBUTES: readonly AttributeSpec[] = [
  { name: 'waterproof', adjective: 'Waterproof', phrase: 'It is fully waterproof and keeps out heavy rain.' },
  { name: 'cushioned', adjective: 'Cushioned', phrase: 'Thick cushioning softens every step and impact.' },
  {
    name: 'organic',
    adjective: 'Organic',
    phrase: 'Made with certified organic materials, grown without pesticides.',
  },
  {
    name: 'wireless',
    adjective: 'Wireless',
    phrase: 'It is wireless and connects over Bluetooth with no cables.',
  },
  { name: 'insulated', adjective: 'Insulated', phrase: 'Insulated to keep warmth in on cold days.' },
  {
    name: 'lightweight',
    adjective: 'Lightweight',
    phrase: 'Lightweight enough to carry all day without noticing.',
  },
  {
    name: 'breathable',
    adjective: 'Breathable',
    phrase: 'Breathable fabric lets air flow and sweat escape.',
  },
  { name: 'recycled', adjective: 'Recycled', phrase: 'Built from recycled materials to cut waste.' },
  { name: 'rechargeable', adjective: 'Rechargeable', phrase: 'The battery is rechargeable over USB-C.' },
  {
    name: 'noise-cancelling',
    adjective: 'Noise-Cancelling',
    phrase: 'Active noise cancelling blocks out traffic and chatter.',
  },
  { name: 'non-stick', adjective: 'Non-Stick', phrase: 'A non-stick coating lets food slide right off.' },
  {
    name: 'dishwasher-safe',
    adjective: 'Dishwasher-Safe',
    phrase: 'It is dishwasher safe for easy cleaning.',
  },
  { name: 'vegan', adjective: 'Vegan', phrase: 'Vegan: no animal products are used anywhere.' },
  {
    name: 'fragrance-free',
    adjective: 'Fragrance-Free',
    phrase: 'Fragrance free and gentle on sensitive skin.',
  },
  { name: 'foldable', adjective: 'Foldable', phrase: 'It folds flat to pack away in seconds.' },
];

const SHOE_SIZES = ['US 6', 'US 7', 'US 8', 'US 9', 'US 10', 'US 11', 'US 12'];
const CLOTHING_SIZES = ['XS', 'S', 'M', 'L', 'XL', 'XXL'];
const ONE_SIZE = ['one size'];
const EARTH = ['black', 'brown', 'olive', 'grey', 'tan', 'navy'];
const BRIGHT = ['red', 'blue', 'green', 'yellow', 'orange', 'purple', 'pink', 'white', 'black'];
const NEUTRAL = ['black', 'white', 'grey', 'silver', 'charcoal'];
const KITCHEN = ['white', 'black', 'red', 'cream', 'sage green', 'stainless'];

export const TAXONOMY: readonly CategorySpec[] = [
  {
    name: 'Footwear',
    types: [
      {
        name: 'hiking boots',
        materials: ['leather', 'suede', 'nylon mesh'],
        colours: EARTH,
        sizes: SHOE_SIZES,
        price: [60, 240],
        attributes: ['waterproof', 'cushioned', 'insulated', 'lightweight', 'breathable', 'vegan'],
        use: 'Built for rocky trails and long days in the hills.',
      },
      {
        name: 'running shoes',
        materials: ['knit mesh', 'synthetic mesh', 'recycled polyester'],
        colours: BRIGHT,
        sizes: SHOE_SIZES,
        price: [45, 200],
        attributes: ['cushioned', 'lightweight', 'breathable', 'waterproof', 'recycled', 'vegan'],
        use: 'Made for road runs, tempo sessions and race day.',
      },
      {
        name: 'sandals',
        materials: ['leather', 'rubber', 'cork'],
        colours: EARTH,
        sizes: SHOE_SIZES,
        price: [20, 110],
        attributes: ['cushioned', 'waterproof', 'vegan', 'recycled', 'lightweight'],
        use: 'Easy to slip on for beach days and summer walks.',
      },
      {
        name: 'rain boots',
        materials: ['natural rubber', 'PVC'],
        colours: BRIGHT,
        sizes: SHOE_SIZES,
        price: [25, 130],
        attributes: ['waterproof', 'insulated', 'cushioned', 'vegan', 'recycled'],
        use: 'Keeps feet dry through puddles, mud and garden work.',
      },
      {
        name: 'slippers',
        materials: ['wool felt', 'fleece', 'sheepskin'],
        colours: ['grey', 'cream', 'navy', 'burgundy', 'brown'],
        sizes: SHOE_SIZES,
        price: [15, 90],
        attributes: ['cushioned', 'insulated', 'organic', 'vegan', 'recycled'],
        use: 'Warm and soft for lazy mornings at home.',
      },
    ],
  },
  {
    name: 'Clothing',
    types: [
      {
        name: 'rain jackets',
        materials: ['nylon', 'polyester', 'recycled nylon'],
        colours: BRIGHT,
        sizes: CLOTHING_SIZES,
        price: [50, 320],
        attributes: ['waterproof', 'breathable', 'lightweight', 'foldable', 'recycled', 'insulated'],
        use: 'A shell for wet commutes and stormy hikes.',
      },
      {
        name: 'hoodies',
        materials: ['cotton', 'fleece', 'cotton blend'],
        colours: BRIGHT,
        sizes: CLOTHING_SIZES,
        price: [25, 110],
        attributes: ['organic', 'recycled', 'insulated', 'vegan', 'breathable'],
        use: 'A relaxed layer for cool evenings and weekends.',
      },
      {
        name: 't-shirts',
        materials: ['cotton', 'linen', 'merino wool', 'bamboo jersey'],
        colours: BRIGHT,
        sizes: CLOTHING_SIZES,
        price: [10, 60],
        attributes: ['organic', 'breathable', 'lightweight', 'recycled', 'vegan'],
        use: 'An everyday basic that goes with anything.',
      },
      {
        name: 'socks',
        materials: ['merino wool', 'cotton', 'bamboo'],
        colours: BRIGHT,
        sizes: ['S', 'M', 'L'],
        price: [6, 30],
        attributes: ['cushioned', 'breathable', 'organic', 'insulated', 'recycled'],
        use: 'A pack of everyday socks that stay up all day.',
      },
      {
        name: 'down jackets',
        materials: ['nylon', 'ripstop polyester'],
        colours: EARTH,
        sizes: CLOTHING_SIZES,
        price: [90, 450],
        attributes: ['insulated', 'waterproof', 'lightweight', 'foldable', 'recycled'],
        use: 'A warm puffer for freezing mornings and winter trips.',
      },
      {
        name: 'yoga pants',
        materials: ['spandex blend', 'organic cotton', 'recycled nylon'],
        colours: ['black', 'navy', 'charcoal', 'plum', 'teal'],
        sizes: CLOTHING_SIZES,
        price: [20, 120],
        attributes: ['breathable', 'organic', 'recycled', 'lightweight', 'vegan'],
        use: 'Stretchy leggings for yoga, pilates and lounging.',
      },
    ],
  },
  {
    name: 'Electronics',
    types: [
      {
        name: 'headphones',
        materials: ['aluminium', 'plastic', 'leatherette'],
        colours: NEUTRAL,
        sizes: ONE_SIZE,
        price: [30, 450],
        attributes: ['wireless', 'noise-cancelling', 'rechargeable', 'foldable', 'lightweight', 'cushioned'],
        use: 'Over-ear headphones for music, calls and long flights.',
      },
      {
        name: 'earbuds',
        materials: ['plastic', 'silicone'],
        colours: NEUTRAL,
        sizes: ONE_SIZE,
        price: [20, 280],
        attributes: ['wireless', 'noise-cancelling', 'rechargeable', 'waterproof', 'lightweight'],
        use: 'Tiny in-ear buds for the gym and the commute.',
      },
      {
        name: 'bluetooth speakers',
        materials: ['fabric', 'aluminium', 'rubberised plastic'],
        colours: BRIGHT,
        sizes: ['mini', 'medium', 'large'],
        price: [25, 350],
        attributes: ['wireless', 'waterproof', 'rechargeable', 'lightweight', 'recycled'],
        use: 'Loud, clear sound for parties, picnics and the shower.',
      },
      {
        name: 'keyboards',
        materials: ['aluminium', 'plastic'],
        colours: NEUTRAL,
        sizes: ['compact', 'tenkeyless', 'full size'],
        price: [25, 250],
        attributes: ['wireless', 'rechargeable', 'foldable', 'lightweight', 'recycled'],
        use: 'A mechanical keyboard for typing and gaming.',
      },
      {
        name: 'computer mice',
        materials: ['plastic', 'aluminium'],
        colours: NEUTRAL,
        sizes: ['small', 'medium', 'large'],
        price: [10, 150],
        attributes: ['wireless', 'rechargeable', 'lightweight', 'recycled'],
        use: 'A precise mouse for work and play.',
      },
      {
        name: 'smartwatches',
        materials: ['aluminium', 'stainless steel', 'titanium'],
        colours: NEUTRAL,
        sizes: ['40 mm', '44 mm', '46 mm'],
        price: [80, 800],
        attributes: ['waterproof', 'rechargeable', 'wireless', 'lightweight'],
        use: 'Tracks steps, sleep and heart rate and shows notifications.',
      },
    ],
  },
  {
    name: 'Kitchen',
    types: [
      {
        name: 'frying pans',
        materials: ['cast iron', 'stainless steel', 'carbon steel', 'aluminium'],
        colours: KITCHEN,
        sizes: ['20 cm', '24 cm', '28 cm', '32 cm'],
        price: [18, 220],
        attributes: ['non-stick', 'dishwasher-safe', 'lightweight', 'recycled'],
        use: 'For searing steaks, frying eggs and tossing vegetables.',
      },
      {
        name: 'coffee mugs',
        materials: ['ceramic', 'stoneware', 'porcelain', 'enamel'],
        colours: KITCHEN,
        sizes: ['8 oz', '12 oz', '16 oz'],
        price: [6, 45],
        attributes: ['dishwasher-safe', 'insulated', 'recycled', 'lightweight'],
        use: 'For the first coffee or tea of the morning.',
      },
      {
        name: 'water bottles',
        materials: ['stainless steel', 'glass', 'BPA-free plastic'],
        colours: BRIGHT,
        sizes: ['500 ml', '750 ml', '1 litre'],
        price: [8, 60],
        attributes: ['insulated', 'dishwasher-safe', 'lightweight', 'recycled', 'foldable'],
        use: 'Keeps water with you at the gym, desk or trail.',
      },
      {
        name: 'chef knives',
        materials: ['stainless steel', 'carbon steel', 'Damascus steel'],
        colours: ['black', 'silver', 'walnut'],
        sizes: ['15 cm', '20 cm', '25 cm'],
        price: [20, 300],
        attributes: ['dishwasher-safe', 'lightweight', 'recycled'],
        use: 'A sharp all-purpose blade for chopping and slicing.',
      },
      {
        name: 'cutting boards',
        materials: ['bamboo', 'walnut', 'maple', 'plastic'],
        colours: ['natural', 'white', 'black'],
        sizes: ['small', 'medium', 'large'],
        price: [10, 120],
        attributes: ['organic', 'dishwasher-safe', 'recycled', 'lightweight'],
        use: 'A sturdy board for prepping vegetables, bread and meat.',
      },
    ],
  },
  {
    name: 'Home',
    types: [
      {
        name: 'bed sheets',
        materials: ['cotton', 'linen', 'bamboo', 'flannel'],
        colours: ['white', 'ivory', 'grey', 'sage green', 'navy'],
        sizes: ['twin', 'full', 'queen', 'king'],
        price: [25, 260],
        attributes: ['organic', 'breathable', 'recycled', 'vegan'],
        use: 'Soft sheets for a good night of sleep.',
      },
      {
        name: 'throw blankets',
        materials: ['wool', 'fleece', 'cotton knit', 'faux fur'],
        colours: ['cream', 'grey', 'mustard', 'rust', 'navy'],
        sizes: ['50 x 60 in', '60 x 80 in'],
        price: [20, 180],
        attributes: ['organic', 'insulated', 'recycled', 'vegan', 'lightweight'],
        use: 'A cosy throw for the sofa on cold evenings.',
      },
      {
        name: 'pillows',
        materials: ['memory foam', 'down', 'buckwheat hulls', 'latex'],
        colours: ['white', 'grey', 'cream'],
        sizes: ['standard', 'queen', 'king'],
        price: [15, 160],
        attributes: ['cushioned', 'organic', 'breathable', 'vegan', 'fragrance-free'],
        use: 'Supports the neck for side, back and stomach sleepers.',
      },
      {
        name: 'desk lamps',
        materials: ['aluminium', 'brass', 'plastic', 'wood'],
        colours: NEUTRAL,
        sizes: ONE_SIZE,
        price: [18, 220],
        attributes: ['rechargeable', 'wireless', 'foldable', 'lightweight', 'recycled'],
        use: 'Bright, even light for reading and late work.',
      },
    ],
  },
  {
    name: 'Outdoors',
    types: [
      {
        name: 'tents',
        materials: ['ripstop nylon', 'polyester', 'canvas'],
        colours: EARTH,
        sizes: ['1-person', '2-person', '4-person', '6-person'],
        price: [60, 700],
        attributes: ['waterproof', 'lightweight', 'foldable', 'insulated', 'recycled'],
        use: 'A shelter for weekend camping and backcountry trips.',
      },
      {
        name: 'backpacks',
        materials: ['nylon', 'canvas', 'recycled polyester', 'leather'],
        colours: EARTH,
        sizes: ['20 L', '30 L', '45 L', '65 L'],
        price: [30, 320],
        attributes: ['waterproof', 'lightweight', 'cushioned', 'recycled', 'vegan', 'foldable'],
        use: 'Carries a laptop to work or gear up a mountain.',
      },
      {
        name: 'sleeping bags',
        materials: ['down', 'synthetic fill', 'flannel'],
        colours: EARTH,
        sizes: ['regular', 'long'],
        price: [40, 500],
        attributes: ['insulated', 'lightweight', 'waterproof', 'recycled', 'foldable'],
        use: 'A warm bag for nights under the stars.',
      },
      {
        name: 'camping stoves',
        materials: ['stainless steel', 'aluminium', 'titanium'],
        colours: ['silver', 'black', 'orange'],
        sizes: ['one burner', 'two burner'],
        price: [25, 220],
        attributes: ['lightweight', 'foldable', 'recycled'],
        use: 'Boils water and cooks dinner at camp.',
      },
    ],
  },
  {
    name: 'Beauty',
    types: [
      {
        name: 'shampoos',
        materials: ['argan oil', 'tea tree oil', 'aloe vera', 'coconut oil'],
        colours: ['clear', 'white', 'green'],
        sizes: ['250 ml', '500 ml', '1 litre'],
        price: [5, 45],
        attributes: ['organic', 'vegan', 'fragrance-free', 'recycled'],
        use: 'Cleans and softens hair without stripping it.',
      },
      {
        name: 'moisturisers',
        materials: ['shea butter', 'hyaluronic acid', 'jojoba oil', 'aloe vera'],
        colours: ['white', 'cream'],
        sizes: ['50 ml', '100 ml', '200 ml'],
        price: [8, 90],
        attributes: ['organic', 'vegan', 'fragrance-free', 'recycled'],
        use: 'Hydrates dry skin morning and night.',
      },
      {
        name: 'bar soaps',
        materials: ['olive oil', 'goat milk', 'oatmeal', 'charcoal'],
        colours: ['white', 'cream', 'black', 'lavender'],
        sizes: ['100 g', '150 g'],
        price: [3, 20],
        attributes: ['organic', 'vegan', 'fragrance-free', 'recycled'],
        use: 'A gentle bar for hands, face and body.',
      },
    ],
  },
];

const BY_NAME = new Map(ATTRIBUTES.map((a) => [a.name, a]));

export function attributeSpec(name: string): AttributeSpec {
  const spec = BY_NAME.get(name);
  if (!spec) throw new Error(`taxonomy: unknown attribute "${name}"`);
  return spec;
}
