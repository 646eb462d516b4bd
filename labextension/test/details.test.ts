/**
 * When the panel reads a serve's details (GET /api/v1/serve/{name}/{version}:
 * signature, example request, metrics): only for AVAILABLE serves, on a user
 * refresh, once when a serve turns AVAILABLE, and for the version an action
 * was about; never again on poll ticks, and a few at a time.
 */
import { ServerConnection } from '@jupyterlab/services';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { Serve, ServeState } from '../src/client';
import { MAX_DETAIL_READS, ModelServeModel, POLL_INTERVAL_MS, serveKey } from '../src/model';
import { StubServer, envelope } from './stubserver';

const VERSIONS = 10;

function aServe(version: number, state: ServeState): Serve {
  return {
    modelName: 'simple',
    modelVersion: version,
    state,
    reason: null,
    url: null,
    backend: 'local',
    createdAt: '2026-01-01T00:00:00Z',
    updatedAt: '2026-01-01T00:00:00Z',
    proxyUrl: null,
    signature: null,
    exampleRequest: null,
    metrics: null
  };
}

/** GET one's answer: the list's fields plus the details, `requests` counted so far. */
function described(version: number, requests: number): Serve {
  return {
    ...aServe(version, 'AVAILABLE'),
    signature: {
      name: 'serving_default',
      method: 'tensorflow/serving/predict',
      inputs: [{ name: 'x', dtype: 'float', shape: [-1] }],
      outputs: [{ name: 'y', dtype: 'float', shape: [-1] }]
    },
    exampleRequest: { instances: [0.0] },
    metrics: { requestCount: requests, errorCount: 0, latencyP50Ms: 1.5, latencyP99Ms: 2.5 }
  };
}

async function until(check: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${what}`);
    }
    await new Promise(resolve => setTimeout(resolve, 20));
  }
}

/** Let `ms` of wall time pass: to observe that nothing happens in it. */
function observe(ms: number): Promise<void> {
  return new Promise(resolve => setTimeout(resolve, ms));
}

describe('reading the details of serves', () => {
  let server: StubServer;
  let model: ModelServeModel;

  /** How many GET one of `version` (all versions when omitted) the server was asked. */
  const detailReads = (version?: number): number =>
    server.requests
      .map(r => r.url.split('?')[0]) // JupyterLab adds a cache-busting query
      .filter(path =>
        version === undefined
          ? /^\/api\/v1\/serve\/simple\/\d+$/.test(path)
          : path === `/api/v1/serve/simple/${version}`
      ).length;

  const details = (version: number) => model.snapshot!.details.get(serveKey('simple', version));

  function answerServes(states: Record<number, ServeState>): void {
    const serves = Object.entries(states).map(([v, state]) => aServe(Number(v), state));
    server.answer('GET', '/api/v1/serve', 200, envelope(200, 'OK', '', serves));
  }

  function answerDetails(version: number, requests: number, delayMs?: number): void {
    const body = envelope(200, 'OK', '', described(version, requests));
    server.answer('GET', `/api/v1/serve/simple/${version}`, 200, body, delayMs);
  }

  beforeEach(async () => {
    server = new StubServer();
    await server.start();
    server.answer('GET', '/api/v1/registered-model', 200, envelope(200, 'OK', '', [{ name: 'simple' }]));
    const versions = Array.from({ length: VERSIONS }, (_, i) => ({ name: 'simple', version: i + 1 }));
    server.answer('GET', '/api/v1/model-version/simple', 200, envelope(200, 'OK', '', versions));
    for (let v = 1; v <= VERSIONS; v++) {
      answerDetails(v, 0);
    }
    model = new ModelServeModel(
      ServerConnection.makeSettings({ baseUrl: `${server.origin}/`, appendToken: false })
    );
  });

  afterEach(async () => {
    model.dispose();
    await server.stop();
  });

  it('reads them on refresh for each AVAILABLE serve, and for no other', async () => {
    // Given simple 1 AVAILABLE, 2 LOADING, 3 FAILED, the others not served
    answerServes({ 1: 'AVAILABLE', 2: 'LOADING', 3: 'FAILED' });
    // When the panel refreshes
    await model.refresh();
    // Then it asked GET one of version 1 only, and holds what it said
    expect(detailReads()).toBe(1);
    expect(detailReads(1)).toBe(1);
    expect(details(1)!.signature!.inputs).toEqual([{ name: 'x', dtype: 'float', shape: [-1] }]);
    expect(details(1)!.exampleRequest).toEqual({ instances: [0.0] });
    expect(details(1)!.metrics!.requestCount).toBe(0);
    expect(details(2)).toBeUndefined();
    expect(details(3)).toBeUndefined();
  });

  it('reads on a poll tick only the serve that just turned AVAILABLE, then nothing while idle', { timeout: 20_000 }, async () => {
    // Given simple 1 AVAILABLE (its details read) and simple 2 LOADING, so the panel polls
    answerServes({ 1: 'AVAILABLE', 2: 'LOADING' });
    await model.refresh();
    const lists = (): number => server.requests.filter(r => r.url.startsWith('/api/v1/serve?')).length;
    const before = lists();
    await until(() => lists() >= before + 2, 5 * POLL_INTERVAL_MS, 'two polls');
    // Then the poll ticks read no details
    expect(detailReads()).toBe(1);
    // When simple 2 turns AVAILABLE
    answerServes({ 1: 'AVAILABLE', 2: 'AVAILABLE' });
    await until(() => details(2) !== undefined, 5 * POLL_INTERVAL_MS, 'the details of simple 2');
    // Then its details were read once, and simple 1's not again
    expect(detailReads(2)).toBe(1);
    expect(detailReads(1)).toBe(1);
    // And with nothing in progress, nothing more is asked over three intervals
    const settled = server.requests.length;
    await observe(3 * POLL_INTERVAL_MS);
    expect(server.requests.length).toBe(settled);
  });

  it('reads one version again after a predict or an action about it, and every AVAILABLE one on refresh', async () => {
    // Given simple 1 and 2 AVAILABLE, read once each
    answerServes({ 1: 'AVAILABLE', 2: 'AVAILABLE', 3: 'LOADING' });
    await model.refresh();
    expect([detailReads(1), detailReads(2)]).toEqual([1, 1]);
    // When a predict on simple 1 was counted, and the panel reads its details again
    answerDetails(1, 1);
    await model.refreshDetails('simple', 1);
    // Then only simple 1 was asked, and its count went up
    expect([detailReads(1), detailReads(2)]).toEqual([2, 1]);
    expect(details(1)!.metrics!.requestCount).toBe(1);
    // When the same is asked of a version that is not AVAILABLE
    await model.refreshDetails('simple', 3);
    // Then nothing is asked
    expect(detailReads(3)).toBe(0);
    // When an action about simple 2 (one that leaves it AVAILABLE) is done
    await model.act(async () => undefined, false, { name: 'simple', version: 2 });
    // Then simple 2's details are read again, and no other's
    expect([detailReads(1), detailReads(2), detailReads(3)]).toEqual([2, 2, 0]);
    // When the user refreshes
    await model.refresh();
    // Then each AVAILABLE serve is read once more
    expect([detailReads(1), detailReads(2), detailReads(3)]).toEqual([3, 3, 0]);
  });

  it('drops the details of a serve that stopped, and reads them once when it is served again', async () => {
    // Given simple 1 AVAILABLE with its details
    answerServes({ 1: 'AVAILABLE' });
    await model.refresh();
    expect(details(1)).toBeDefined();
    // When it is stopped
    answerServes({});
    await model.act(async () => undefined, false, { name: 'simple', version: 1 });
    // Then its details are gone (they would be stale)
    expect(details(1)).toBeUndefined();
    // When it is served again and is AVAILABLE after the action
    answerServes({ 1: 'AVAILABLE' });
    answerDetails(1, 0);
    const before = detailReads(1);
    await model.act(async () => undefined, false, { name: 'simple', version: 1 });
    // Then its details were read exactly once more (newly AVAILABLE and the action's version)
    expect(detailReads(1)).toBe(before + 1);
    expect(details(1)!.metrics!.requestCount).toBe(0);
  });

  it(`has at most ${MAX_DETAIL_READS} reads of details on their way at a time`, async () => {
    // Given ten AVAILABLE serves whose GET one takes a while
    answerServes(Object.fromEntries(Array.from({ length: VERSIONS }, (_, i) => [i + 1, 'AVAILABLE'])));
    for (let v = 1; v <= VERSIONS; v++) {
      answerDetails(v, v, 100);
    }
    // When the panel refreshes
    await model.refresh();
    // Then all ten were read, never more than MAX_DETAIL_READS at once
    expect(detailReads()).toBe(VERSIONS);
    for (let v = 1; v <= VERSIONS; v++) {
      expect(details(v)!.metrics!.requestCount).toBe(v);
    }
    expect(server.maxOpenDelayed).toBe(MAX_DETAIL_READS);
  });

  it('says why a read failed, keeping the signature read before', async () => {
    // Given simple 1 AVAILABLE with its details read
    answerServes({ 1: 'AVAILABLE' });
    await model.refresh();
    // When the next read of them fails
    server.answer(
      'GET',
      '/api/v1/serve/simple/1',
      503,
      envelope(503, 'SERVICE_UNAVAILABLE', 'The model server is unavailable', null)
    );
    await model.refreshDetails('simple', 1);
    // Then the details say why, keep the signature and example, and have no metrics
    expect(details(1)!.error).toBe('The model server is unavailable');
    expect(details(1)!.signature!.name).toBe('serving_default');
    expect(details(1)!.exampleRequest).toEqual({ instances: [0.0] });
    expect(details(1)!.metrics).toBeNull();
    // and the panel's alert area is not taken by it
    expect(model.error).toBeNull();
  });
});
