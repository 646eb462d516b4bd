import { ServerConnection } from '@jupyterlab/services';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import {
  ModelServeError,
  Serve,
  describeServe,
  listServes,
  listVersions,
  logs,
  predict,
  proxyRequestUrl,
  registerVersion,
  requestAPI,
  serve,
  stop
} from '../src/client';
import { StubServer, envelope } from './stubserver';

const TOKEN = 'secret-token';

function aServe(overrides: Partial<Serve> = {}): Serve {
  return {
    modelName: 'simple',
    modelVersion: 1,
    state: 'AVAILABLE',
    reason: null,
    url: 'http://127.0.0.1:9000/v1/models/simple/versions/1:predict',
    backend: 'local',
    createdAt: '2026-01-01T00:00:00Z',
    updatedAt: '2026-01-01T00:00:00Z',
    proxyUrl: null,
    ...overrides
  };
}

describe('the REST client under JupyterHub’s base_url', () => {
  let server: StubServer;
  let settings: ServerConnection.ISettings;

  beforeEach(async () => {
    server = new StubServer();
    await server.start();
    settings = ServerConnection.makeSettings({
      baseUrl: `${server.origin}/user/alice/`,
      token: TOKEN,
      appendToken: false
    });
    document.cookie = '_xsrf=xsrf-cookie-value';
  });

  afterEach(async () => {
    await server.stop();
  });

  it('lists serves below the base_url with the token and the XSRF cookie', async () => {
    // Given a server with one serve under /user/alice/
    const listed = aServe();
    server.answer('GET', '/user/alice/api/v1/serve', 200, envelope(200, 'OK', '', [listed]));
    // When the sidebar lists serves
    const serves = await listServes(settings);
    // Then it gets the envelope's result, asked below the base_url with Jupyter's auth
    expect(serves).toEqual([listed]);
    const [request] = server.requests;
    expect(request.url).toMatch(/^\/user\/alice\/api\/v1\/serve\?limit=1000/);
    expect(request.headers.authorization).toBe(`token ${TOKEN}`);
    expect(request.headers['x-xsrftoken']).toBe('xsrf-cookie-value');
  });

  it('throws the envelope’s message, status and reason when the server says no', async () => {
    // Given a server that refuses a serve with a 422 envelope
    server.answer(
      'POST',
      '/user/alice/api/v1/serve',
      422,
      envelope(422, 'UNPROCESSABLE_ENTITY', 'simple version 1 failed: saved_model.pb is corrupt', null)
    );
    // When the sidebar asks for the serve
    const failure = serve('simple', 1, settings);
    // Then the error carries the server's words
    await expect(failure).rejects.toBeInstanceOf(ModelServeError);
    await expect(failure).rejects.toMatchObject({
      message: 'simple version 1 failed: saved_model.pb is corrupt',
      status: 422,
      reason: 'UNPROCESSABLE_ENTITY'
    });
  });

  it('posts serve and stop bodies as openapi.yaml’s ServeRequest', async () => {
    // Given a server that accepts both
    server.answer('POST', '/user/alice/api/v1/serve', 200, envelope(200, 'OK', '', aServe()));
    server.answer('DELETE', '/user/alice/api/v1/serve', 200, envelope(200, 'OK', '', null));
    // When the sidebar serves then stops simple 1
    await serve('simple', 1, settings);
    await stop('simple', 1, settings);
    // Then both bodies name the model and version as JSON
    expect(server.requests.map(r => [r.method, JSON.parse(r.body)])).toEqual([
      ['POST', { modelName: 'simple', modelVersion: 1 }],
      ['DELETE', { modelName: 'simple', modelVersion: 1 }]
    ]);
    expect(server.requests[0].headers['content-type']).toBe('application/json');
  });

  it('registers a folder with a name and a source', async () => {
    // Given a server that registers version 3
    server.answer(
      'POST',
      '/user/alice/api/v1/model-version',
      200,
      envelope(200, 'OK', '', { name: 'half', version: 3 })
    );
    // When the register dialog submits
    const version = await registerVersion('half', 'models/half/1', settings);
    // Then it posted ModelVersionCreate and returns the new version
    expect(JSON.parse(server.requests[0].body)).toEqual({ name: 'half', source: 'models/half/1' });
    expect(version.version).toBe(3);
  });

  it('encodes each path segment', async () => {
    // Given a name that a path would misread (the server refuses it; the client must not
    // turn it into another route first)
    server.answer('GET', '/user/alice/api/v1/model-version/a%2F..%2Fb%20c', 404, envelope(404, 'NOT_FOUND', 'no', null));
    // When the sidebar asks for its versions
    await expect(listVersions('a/../b c', settings)).rejects.toThrow();
    // Then the request named exactly that one segment
    expect(server.requests[0].url).toMatch(/^\/user\/alice\/api\/v1\/model-version\/a%2F\.\.%2Fb%20c(\?|$)/);
  });

  it('encodes names in paths and asks for the log tail', async () => {
    // Given a server with versions and log lines for "my_model"
    server.answer('GET', '/user/alice/api/v1/model-version/my_model', 200, envelope(200, 'OK', '', []));
    server.answer(
      'GET',
      '/user/alice/api/v1/serve/my_model/2/logs',
      200,
      envelope(200, 'OK', '', ['line one', 'line two'])
    );
    // When the sidebar reads both
    await listVersions('my_model', settings);
    const lines = await logs('my_model', 2, 50, settings);
    // Then the lines come back in order, and the tail was asked for
    expect(lines).toEqual(['line one', 'line two']);
    expect(server.requests[1].url).toMatch(/^\/user\/alice\/api\/v1\/serve\/my_model\/2\/logs\?tail=50/);
  });

  it('reads one serve with its signature, example request and metrics', async () => {
    // Given the server's GET one of my_model 2, with the details the lists leave out
    const described = aServe({
      modelName: 'my_model',
      modelVersion: 2,
      signature: {
        name: 'serving_default',
        method: 'tensorflow/serving/predict',
        inputs: [{ name: 'x', dtype: 'float', shape: [-1, 3] }],
        outputs: [{ name: 'y', dtype: 'float', shape: null }]
      },
      exampleRequest: { instances: [[0.0, 0.0, 0.0]] },
      metrics: { requestCount: 3, errorCount: 1, latencyP50Ms: 0.5, latencyP99Ms: null }
    });
    server.answer('GET', '/user/alice/api/v1/serve/my_model/2', 200, envelope(200, 'OK', '', described));
    // When the sidebar reads it
    const answer = await describeServe('my_model', 2, settings);
    // Then it asked that path, and has the details as the server gave them
    expect(server.requests[0].url).toMatch(/^\/user\/alice\/api\/v1\/serve\/my_model\/2(\?|$)/);
    expect(answer).toEqual(described);
  });

  it('says so when the answer is not JSON, or not the API’s envelope', async () => {
    // Given a proxy that answers HTML, and a route that answers JSON without an envelope
    server.routes.set('GET /user/alice/api/v1/serve', {
      status: 502,
      body: '<html>Bad Gateway</html>',
      contentType: 'text/html'
    });
    server.answer('GET', '/user/alice/api/v1/registered-model', 200, { models: [] });
    // When the sidebar reads them
    // Then each is a ModelServeError that says what was wrong
    await expect(listServes(settings)).rejects.toThrow(/502 with a body that is not JSON: <html>/);
    await expect(requestAPI('api/v1/registered-model', {}, settings)).rejects.toThrow(
      /without the API's envelope/
    );
  });

  it('turns an unreachable server into a ModelServeError', async () => {
    // Given a server that has gone away
    await server.stop();
    // When the sidebar lists serves
    const failure = listServes(settings);
    // Then the error says the server cannot be reached
    await expect(failure).rejects.toBeInstanceOf(ModelServeError);
    await expect(failure).rejects.toThrow(/Cannot reach the Jupyter server/);
  });

  it('predicts through proxyUrl’s path on the page’s own origin', async () => {
    // Given a proxyUrl built from a Host the browser does not use (behind JupyterHub)
    const proxyUrl =
      'http://10.0.0.7:8888/user/alice/modelserve/v1/models/simple/versions/1:predict';
    server.routes.set('POST /user/alice/modelserve/v1/models/simple/versions/1:predict', {
      status: 200,
      body: '{"predictions": [2.5, 3.0, 4.5]}'
    });
    // When Try it posts the request
    const answer = await predict(proxyUrl, '{"instances": [1.0, 2.0, 5.0]}', settings);
    // Then it went to this server with Jupyter's auth, and the body is TF Serving's text as is
    expect(answer).toEqual({
      ok: true,
      status: 200,
      text: '{"predictions": [2.5, 3.0, 4.5]}',
      error: null
    });
    const [request] = server.requests;
    expect(request.url).toMatch(/^\/user\/alice\/modelserve\/v1\/models\/simple\/versions\/1:predict/);
    expect(request.headers.authorization).toBe(`token ${TOKEN}`);
    expect(JSON.parse(request.body)).toEqual({ instances: [1.0, 2.0, 5.0] });
  });

  it('returns TF Serving’s error rather than throwing it', async () => {
    // Given a model server that refuses the request's shape
    const path = '/user/alice/modelserve/v1/models/simple/versions/1:predict';
    server.answer('POST', path, 400, { error: 'Expected float, got string' });
    // When Try it posts it
    const answer = await predict(`${server.origin}${path}`, '{"instances": ["a"]}', settings);
    // Then the answer carries TF Serving's error
    expect(answer.ok).toBe(false);
    expect(answer.status).toBe(400);
    expect(answer.error).toBe('Expected float, got string');
  });
});

describe('proxyRequestUrl', () => {
  const settings = ServerConnection.makeSettings({
    baseUrl: 'https://hub.example.org/user/alice/',
    appendToken: false
  });

  it('keeps the path, and takes the page’s origin', () => {
    expect(
      proxyRequestUrl(
        'http://127.0.0.1:8888/user/alice/modelserve/v1/models/m/versions/2:predict',
        settings
      )
    ).toBe('https://hub.example.org/user/alice/modelserve/v1/models/m/versions/2:predict');
  });

  it.each([
    ['outside the base_url', 'http://127.0.0.1:8888/user/bob/modelserve/v1/models/m/versions/2:predict'],
    ['another route of this server', 'http://h/user/alice/api/v1/serve'],
    ['a path that climbs out', 'http://h/user/alice/modelserve/v1/models/m/versions/2:predict/../../../../api/v1/serve'],
    ['a name outside the rule', 'http://h/user/alice/modelserve/v1/models/m%2F..%2Fx/versions/2:predict'],
    ['a query', 'http://h/user/alice/modelserve/v1/models/m/versions/2:predict?x=1']
  ])('refuses a proxy URL %s: the token goes only to the predict proxy', (_, proxyUrl) => {
    expect(() => proxyRequestUrl(proxyUrl, settings)).toThrow(/is not this server's predict proxy/);
  });
});
