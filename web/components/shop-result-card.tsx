import Link from 'next/link';
import styles from '@/app/shop/shop.module.css';
import type { ShopCardFragment, ShopFeatureFieldsFragment } from '@/lib/gql/graphql';
import { formatValue, unitPath } from '@/lib/units';

const PRICE = new Intl.NumberFormat('en-US', { style: 'currency', currency: 'USD' });

/** A feature's best explanation, or a note that it has none yet. */
export function explanationOf(feature: ShopFeatureFieldsFragment): string {
  const best = feature.explanations.edges[0]?.node;
  if (!best) return 'no explanation yet';
  return best.baseline ? `${best.text} (baseline)` : best.text;
}

/** One result: title, price, attributes, similarity, and the features it shares with the query. */
export function ShopResultCard(props: { result: ShopCardFragment }) {
  const r = props.result;
  return (
    <li className={styles.card} data-id={r.id} data-rank={r.rank}>
      <h3 className="title">{r.title}</h3>
      <div className={styles.meta}>
        {r.price === null ? null : <span className={`${styles.price} price`}>{PRICE.format(r.price)}</span>}
        {r.category ? <span className="category">{r.category}</span> : null}
        <span className="score" title="cosine similarity to the query">
          {r.score.toFixed(3)}
        </span>
      </div>
      {r.attributes.length > 0 ? (
        <ul className={`${styles.tags} attributes`}>
          {r.attributes.map((a) => (
            <li key={a}>{a}</li>
          ))}
        </ul>
      ) : null}
      <details className={`${styles.why} why`}>
        <summary>why this result ({r.why.length} shared features)</summary>
        {r.why.length === 0 ? (
          <p className="muted">none of the query's top features is among this product's</p>
        ) : (
          <ul>
            {r.why.map((w) => (
              <li key={w.feature.id} data-feature={w.feature.index}>
                <Link href={unitPath(w.feature.id)}>#{w.feature.index}</Link> {explanationOf(w.feature)}{' '}
                <span className="muted">
                  (query {formatValue(w.queryValue)}, product {formatValue(w.resultValue)})
                </span>
              </li>
            ))}
          </ul>
        )}
      </details>
    </li>
  );
}
