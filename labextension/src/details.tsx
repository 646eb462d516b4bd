/**
 * An AVAILABLE serve's details in the sidebar: its signature as a small
 * table, its metrics, as GET one gave them (see model.ts for when it asks).
 */
import React from 'react';

import { ServeMetrics, Signature } from './client';
import { ServeDetails } from './model';

/** An AVAILABLE serve's signature and metrics, as far as they were read. */
export function Details({
  details,
  label
}: {
  details: ServeDetails | null;
  label: string;
}): JSX.Element {
  if (details === null) {
    return (
      <p className="jp-ModelServe-details jp-ModelServe-empty" aria-busy="true">
        Reading the signature and metrics…
      </p>
    );
  }
  return (
    <div className="jp-ModelServe-details">
      {details.error !== null && (
        <p className="jp-ModelServe-detailsError">
          Could not read the signature and metrics: {details.error}
        </p>
      )}
      <SignatureTable signature={details.signature} label={label} />
      {details.signature !== null && details.exampleRequest === null && details.error === null && (
        <p className="jp-ModelServe-empty">
          No example request (one would be too large): write one that fits the signature.
        </p>
      )}
      <MetricsList metrics={details.metrics} failed={details.error !== null} label={label} />
    </div>
  );
}

/** A shape as TF prints one: `[?, 3]`, -1 being any size; `any` for an unknown rank. */
export function formatShape(shape: number[] | null): string {
  if (shape === null) {
    return 'any';
  }
  return `[${shape.map(dim => (dim < 0 ? '?' : String(dim))).join(', ')}]`;
}

/** Milliseconds, to a precision that reads: 0.42, 3.1, 120. */
export function formatMs(ms: number | null): string {
  if (ms === null) {
    return '–';
  }
  const digits = ms < 1 ? 2 : ms < 100 ? 1 : 0;
  return `${ms.toFixed(digits)} ms`;
}

export function SignatureTable({
  signature,
  label
}: {
  signature: Signature | null;
  label: string;
}): JSX.Element {
  if (signature === null) {
    return (
      <p className="jp-ModelServe-signature jp-ModelServe-empty" aria-label={`Signature of ${label}`}>
        The model’s signature is not known.
      </p>
    );
  }
  const rows = [
    ...signature.inputs.map(spec => ({ kind: 'in', spec })),
    ...signature.outputs.map(spec => ({ kind: 'out', spec }))
  ];
  return (
    <table
      className="jp-ModelServe-signature"
      aria-label={`Signature of ${label}`}
      title={signature.method}
    >
      <caption>{signature.name}</caption>
      <thead>
        <tr>
          <th scope="col">
            <span className="jp-ModelServe-visuallyHidden">input or output</span>
          </th>
          <th scope="col">name</th>
          <th scope="col">dtype</th>
          <th scope="col" title="? is a dimension of any size">
            shape
          </th>
        </tr>
      </thead>
      <tbody>
        {rows.map(({ kind, spec }) => (
          <tr key={`${kind} ${spec.name}`} data-kind={kind} data-name={spec.name}>
            <th scope="row">{kind}</th>
            <td>
              <code>{spec.name}</code>
            </td>
            <td>{spec.dtype}</td>
            <td>
              <code>{formatShape(spec.shape)}</code>
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

export function MetricsList({
  metrics,
  failed,
  label
}: {
  metrics: ServeMetrics | null;
  failed: boolean;
  label: string;
}): JSX.Element | null {
  if (metrics === null) {
    // A failed read already said why above.
    return failed ? null : (
      <p className="jp-ModelServe-metrics jp-ModelServe-empty" aria-label={`Metrics of ${label}`}>
        No metrics: the model server did not answer for them.
      </p>
    );
  }
  const items: [string, string, string][] = [
    ['requests', String(metrics.requestCount), 'Requests, any status'],
    ['errors', String(metrics.errorCount), 'Requests that failed'],
    ['p50', formatMs(metrics.latencyP50Ms), 'Median latency'],
    ['p99', formatMs(metrics.latencyP99Ms), '99th percentile latency']
  ];
  return (
    <dl
      className="jp-ModelServe-metrics"
      aria-label={`Metrics of ${label}`}
      data-request-count={metrics.requestCount}
      data-error-count={metrics.errorCount}
    >
      {items.map(([term, value, help]) => (
        <div key={term} title={help}>
          <dt>{term}</dt>
          <dd>{value}</dd>
        </div>
      ))}
    </dl>
  );
}
