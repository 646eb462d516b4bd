import { ServerConnection } from '@jupyterlab/services';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { Serve, ServeState } from '../src/client';
import { ModelServeModel, POLL_INTERVAL_MS, serveKey } from '../src/model';
import { StubServer, envelope } from './stubserver';

function aServe(state: ServeState): Serve {
  return {
    modelName: 'simple',
    modelVersion: 1,
    state,
    reason: null,
    url: null,
    backend: 'local',
    createdAt: '2026-01-01T00:00:00Z',
    updatedAt: '2026-01-01T00:00:00Z',
    proxyUrl: null
  };
}

/** Wait until `check` holds, or fail after `ms` (no fixed sleep). */
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

/** What the browser does when the user switches tabs. */
function setVisibility(state: DocumentVisibilityState): void {
  Object.defineProperty(document, 'visibilityState', { configurable: true, value: state });
  document.dispatchEvent(new Event('visibilitychange'));
}

describe('ModelServeModel', () => {
  let server: StubServer;
  let model: ModelServeModel;
  const serveLists = (): number =>
    server.requests.filter(r => r.url.startsWith('/api/v1/serve?')).length;

  const modelLists = (): number =>
    server.requests.filter(r => r.url.startsWith('/api/v1/registered-model?')).length;

  function answerServes(state: ServeState | null): void {
    server.answer(
      'GET',
      '/api/v1/serve',
      200,
      envelope(200, 'OK', '', state === null ? [] : [aServe(state)])
    );
  }

  beforeEach(async () => {
    server = new StubServer();
    await server.start();
    server.answer('GET', '/api/v1/registered-model', 200, envelope(200, 'OK', '', [{ name: 'simple' }]));
    server.answer(
      'GET',
      '/api/v1/model-version/simple',
      200,
      envelope(200, 'OK', '', [
        { name: 'simple', version: 1 },
        { name: 'simple', version: 2 }
      ])
    );
    model = new ModelServeModel(
      ServerConnection.makeSettings({ baseUrl: `${server.origin}/`, appendToken: false })
    );
  });

  afterEach(async () => {
    model.dispose();
    setVisibility('visible');
    await server.stop();
  });

  it('reads models, versions newest first, and serves', async () => {
    // Given simple 1 LOADING
    answerServes('LOADING');
    // When the model refreshes
    await model.refresh();
    // Then the snapshot holds it all
    expect(model.error).toBeNull();
    expect(model.snapshot!.models[0].versions.map(v => v.version)).toEqual([2, 1]);
    expect(model.snapshot!.serves.get(serveKey('simple', 1))!.state).toBe('LOADING');
  });

  it('polls about every second while a serve is LOADING, and stops once it settled', { timeout: 20_000 }, async () => {
    // Given a serve that is loading
    answerServes('LOADING');
    await model.refresh();
    const before = serveLists();
    const registryReads = modelLists();
    // Then the poll asks again, twice, within a few intervals, for the serves only
    await until(() => serveLists() >= before + 2, 5 * POLL_INTERVAL_MS, 'two polls');
    expect(modelLists()).toBe(registryReads);
    // When the serve settles
    answerServes('AVAILABLE');
    await until(
      () => model.snapshot!.serves.get(serveKey('simple', 1))!.state === 'AVAILABLE',
      5 * POLL_INTERVAL_MS,
      'the AVAILABLE state'
    );
    const settled = serveLists();
    // Then nothing more is asked over three intervals
    await observe(3 * POLL_INTERVAL_MS);
    expect(serveLists()).toBe(settled);
  });

  it('does not poll while the browser tab is hidden, and polls again once it shows', { timeout: 20_000 }, async () => {
    // Given a hidden tab and a serve that is pending
    setVisibility('hidden');
    answerServes('PENDING');
    await model.refresh();
    const before = serveLists();
    // Then nothing is asked over three intervals
    await observe(3 * POLL_INTERVAL_MS);
    expect(serveLists()).toBe(before);
    // When the tab shows again
    setVisibility('visible');
    // Then the poll resumes
    await until(() => serveLists() > before, 5 * POLL_INTERVAL_MS, 'a poll after showing');
  });

  it('puts a failed action’s message in error, never rejecting, and clears it after one succeeds', async () => {
    // Given nothing served
    answerServes(null);
    await model.refresh();
    // When an action fails
    await model.act(async () => {
      throw new Error('simple version 9 is not registered');
    });
    // Then its message is the panel's error
    expect(model.error).toBe('simple version 9 is not registered');
    // When the next action succeeds
    await model.act(async () => undefined);
    // Then the error is gone
    expect(model.error).toBeNull();
  });

  it('keeps asking after a first read failed, until the registry answers', { timeout: 20_000 }, async () => {
    // Given a server whose first answers fail
    server.answer('GET', '/api/v1/registered-model', 503, envelope(503, 'SERVICE_UNAVAILABLE', 'starting', null));
    answerServes(null);
    await model.refresh();
    expect(model.snapshot).toBeNull();
    expect(model.error).toBe('starting');
    // When it answers again
    server.answer('GET', '/api/v1/registered-model', 200, envelope(200, 'OK', '', [{ name: 'simple' }]));
    // Then the poll reads the registry by itself, and the error goes
    await until(() => model.snapshot !== null, 5 * POLL_INTERVAL_MS, 'a snapshot');
    expect(model.error).toBeNull();
  });

  it('clears an action’s error when the user refreshes', async () => {
    // Given a failed action
    answerServes(null);
    await model.refresh();
    await model.act(async () => {
      throw new Error('simple version 9 is not registered');
    });
    expect(model.error).toBe('simple version 9 is not registered');
    // When the user refreshes
    await model.refresh();
    // Then the panel no longer shows it
    expect(model.error).toBeNull();
  });

  it('puts a list failure’s envelope message in error', async () => {
    // Given a registry that fails
    server.answer(
      'GET',
      '/api/v1/registered-model',
      503,
      envelope(503, 'SERVICE_UNAVAILABLE', 'The registry database is locked; try again', null)
    );
    answerServes(null);
    // When the model refreshes
    await model.refresh();
    // Then the message is the panel's error
    expect(model.error).toBe('The registry database is locked; try again');
  });
});
