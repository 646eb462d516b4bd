/**
 * The REST client of the sidebar: every call goes through JupyterLab's
 * ServerConnection, so the server's base_url (JupyterHub's /user/<name>/),
 * the token and the XSRF cookie are JupyterLab's business, not ours.
 *
 * The types follow jupyter_modelserve/openapi.yaml.
 */
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

/** The serve states of openapi.yaml's ServeState. */
export type ServeState = 'PENDING' | 'LOADING' | 'AVAILABLE' | 'FAILED' | 'DELETING';

/** States a poll has to watch: they change without anyone asking. */
export const IN_PROGRESS_STATES: ReadonlySet<ServeState> = new Set<ServeState>([
  'PENDING',
  'LOADING',
  'DELETING'
]);

export interface Serve {
  modelName: string;
  modelVersion: number;
  state: ServeState;
  reason: string | null;
  /** TF Serving's predict URL of this version. */
  url: string | null;
  backend: string;
  createdAt: string;
  updatedAt: string;
  /** The same predict URL through the Jupyter server, under Jupyter auth. */
  proxyUrl: string | null;
  /**
   * GET one only (`describeServe`, ServeDescribed); the lists leave them out.
   * The serving signature, null when it is not known.
   */
  signature?: Signature | null;
  /** A TF Serving predict body of zeros of the right shape and dtype; null if too large. */
  exampleRequest?: Record<string, unknown> | null;
  /** The model server's counters; null when it could not be asked. */
  metrics?: ServeMetrics | null;
}

/** openapi.yaml's ServeDescribed: a serve as GET one answers it, details included. */
export interface ServeDescribed extends Serve {
  signature: Signature | null;
  exampleRequest: Record<string, unknown> | null;
  metrics: ServeMetrics | null;
}

/** openapi.yaml's TensorSpec: one input or output of a signature. */
export interface TensorSpec {
  name: string;
  /** TF's DataType name without "DT_", lower case: "float", "int64", "string"... */
  dtype: string;
  /** -1 is a dimension of any size; null is an unknown rank. */
  shape: number[] | null;
}

/** openapi.yaml's Signature: the serving signature of a version. */
export interface Signature {
  /** The signature key, e.g. "serving_default". */
  name: string;
  /** e.g. "tensorflow/serving/predict". */
  method: string;
  inputs: TensorSpec[];
  outputs: TensorSpec[];
}

/** openapi.yaml's ServeMetrics: a serve's traffic as its model server counts it. */
export interface ServeMetrics {
  /** All requests, any status. */
  requestCount: number;
  /** Requests whose status was not OK. */
  errorCount: number;
  /** null until there was a request. */
  latencyP50Ms: number | null;
  latencyP99Ms: number | null;
}

export interface RegisteredModel {
  name: string;
  description: string | null;
  tags: string[];
  creationTime: string;
  lastUpdatedTime: string;
}

export type ModelStage = 'None' | 'Developing' | 'Production' | 'Archived';

export interface ModelVersion {
  name: string;
  version: number;
  id: string;
  userId: string;
  experimentId: string;
  modelType: string;
  currentStage: ModelStage;
  source: string;
  dataset: string | null;
  description: string | null;
  tags: string[];
  creationTime: string;
  lastUpdatedTime: string;
}

/** openapi.yaml's Envelope: every /api/v1 answer, success or not. */
export interface Envelope<T> {
  status: string;
  code: number;
  success: boolean;
  message: string;
  result: T;
  attributes: { limit?: number; offset?: number };
}

/**
 * An answer the server refused (or one we could not read). `message` is the
 * envelope's message, or TF Serving's `error`, so the panel can show it as is.
 */
export class ModelServeError extends Error {
  readonly name = 'ModelServeError';
  constructor(
    message: string,
    /** The HTTP status; 0 when the server could not be reached. */
    readonly status: number,
    /** The envelope's status (e.g. "NOT_FOUND"), when there was one. */
    readonly reason: string | null = null
  ) {
    super(message);
  }
}

/** The largest page the REST lists give (openapi.yaml's Limit). */
const PAGE_LIMIT = 1000;

function settingsOrDefault(settings?: ServerConnection.ISettings): ServerConnection.ISettings {
  return settings ?? ServerConnection.makeSettings();
}

async function send(
  url: string,
  init: RequestInit,
  settings: ServerConnection.ISettings
): Promise<Response> {
  try {
    return await ServerConnection.makeRequest(url, init, settings);
  } catch (error) {
    // A NetworkError: the server is down or the connection was cut.
    const detail = error instanceof Error ? error.message : String(error);
    throw new ModelServeError(`Cannot reach the Jupyter server: ${detail}`, 0);
  }
}

async function readJson(response: Response): Promise<unknown> {
  const text = await response.text();
  if (text === '') {
    return null;
  }
  try {
    return JSON.parse(text);
  } catch {
    const excerpt = text.length > 200 ? `${text.slice(0, 200)}…` : text;
    throw new ModelServeError(
      `The server answered ${response.status} with a body that is not JSON: ${excerpt}`,
      response.status
    );
  }
}

function isEnvelope(body: unknown): body is Envelope<unknown> {
  return (
    typeof body === 'object' &&
    body !== null &&
    'success' in body &&
    'message' in body &&
    'code' in body
  );
}

/**
 * Call the extension's REST API at `path` (relative to the server's base_url,
 * e.g. "api/v1/serve") and return the envelope's `result`.
 *
 * @throws ModelServeError carrying the envelope's `message` when the server
 *   says no, or when the answer is not an envelope.
 */
export async function requestAPI<T>(
  path: string,
  init: RequestInit = {},
  settings?: ServerConnection.ISettings
): Promise<T> {
  const resolved = settingsOrDefault(settings);
  const url = URLExt.join(resolved.baseUrl, path);
  const response = await send(url, init, resolved);
  const body = await readJson(response);
  if (!isEnvelope(body)) {
    throw new ModelServeError(
      `The server answered ${response.status} without the API's envelope` +
        ` (is jupyter_modelserve enabled on this server?)`,
      response.status
    );
  }
  if (!response.ok || !body.success) {
    throw new ModelServeError(
      body.message || `The server answered ${response.status} ${body.status}`,
      response.status,
      body.status
    );
  }
  return body.result as T;
}

function jsonInit(method: string, body: unknown): RequestInit {
  return {
    method,
    body: JSON.stringify(body),
    headers: { 'Content-Type': 'application/json' }
  };
}

function pathOf(...parts: string[]): string {
  return parts.map(encodeURIComponent).join('/');
}

export function listServes(settings?: ServerConnection.ISettings): Promise<Serve[]> {
  return requestAPI<Serve[]>(`api/v1/serve?limit=${PAGE_LIMIT}`, {}, settings);
}

export function listModels(settings?: ServerConnection.ISettings): Promise<RegisteredModel[]> {
  return requestAPI<RegisteredModel[]>(`api/v1/registered-model?limit=${PAGE_LIMIT}`, {}, settings);
}

export function listVersions(
  name: string,
  settings?: ServerConnection.ISettings
): Promise<ModelVersion[]> {
  return requestAPI<ModelVersion[]>(
    `api/v1/model-version/${pathOf(name)}?limit=${PAGE_LIMIT}`,
    {},
    settings
  );
}

/**
 * One serve with its signature, example request and metrics. Each costs the
 * server a read of the artifact and a scrape of the model server, so the
 * panel asks only for the serves whose details it shows (see model.ts).
 */
export function describeServe(
  name: string,
  version: number,
  settings?: ServerConnection.ISettings
): Promise<ServeDescribed> {
  return requestAPI<ServeDescribed>(`api/v1/serve/${pathOf(name, String(version))}`, {}, settings);
}

/** Ask for a serve; it answers at once, in PENDING or LOADING, without waiting. */
export function serve(
  name: string,
  version: number,
  settings?: ServerConnection.ISettings
): Promise<Serve> {
  return requestAPI<Serve>(
    'api/v1/serve',
    jsonInit('POST', { modelName: name, modelVersion: version }),
    settings
  );
}

/** Stop a serve; the server answers once the backend confirmed. */
export async function stop(
  name: string,
  version: number,
  settings?: ServerConnection.ISettings
): Promise<void> {
  await requestAPI<null>(
    'api/v1/serve',
    jsonInit('DELETE', { modelName: name, modelVersion: version }),
    settings
  );
}

/** The last `tail` log lines about a serve, oldest first. */
export function logs(
  name: string,
  version: number,
  tail = 100,
  settings?: ServerConnection.ISettings
): Promise<string[]> {
  return requestAPI<string[]>(
    `api/v1/serve/${pathOf(name, String(version))}/logs?tail=${tail}`,
    {},
    settings
  );
}

/**
 * Register a SavedModel folder (`source`, relative to the server's root_dir
 * as the file browser names it) as the next version of `name`.
 */
export function registerVersion(
  name: string,
  source: string,
  settings?: ServerConnection.ISettings
): Promise<ModelVersion> {
  return requestAPI<ModelVersion>(
    'api/v1/model-version',
    jsonInit('POST', { name, source }),
    settings
  );
}

/** What a predict answered: TF Serving's body, as text and parsed. */
export interface PredictAnswer {
  ok: boolean;
  status: number;
  /** The body as TF Serving wrote it (keeps `3.0` as `3.0`). */
  text: string;
  /** TF Serving's `error`, when it gave one. */
  error: string | null;
}

/**
 * The URL to request for a serve's `proxyUrl`: its path and query on the
 * page's own origin. The server builds proxyUrl from the Host it was asked
 * on, which behind JupyterHub or a proxy is not the address the browser
 * uses; the path already holds the base_url.
 */
/** The proxy's predict route below base_url; names follow the model name rule. */
const PROXY_ROUTE =
  /^modelserve\/v1\/models\/[0-9A-Za-z](?:[0-9A-Za-z_-]*[0-9A-Za-z])?\/versions\/[1-9][0-9]*:predict$/;

export function proxyRequestUrl(proxyUrl: string, settings: ServerConnection.ISettings): string {
  const target = new URL(proxyUrl, settings.baseUrl);
  const page = new URL(settings.baseUrl);
  // The token and the XSRF header go with this POST: only ever to the predict
  // proxy of this server, whatever path a proxyUrl names.
  const route = target.pathname.startsWith(page.pathname)
    ? target.pathname.slice(page.pathname.length)
    : null;
  if (route === null || !PROXY_ROUTE.test(route) || target.search !== '') {
    throw new ModelServeError(
      `The proxy URL ${proxyUrl} is not this server's predict proxy ` +
        `(${page.pathname}modelserve/v1/models/NAME/versions/N:predict)`,
      0
    );
  }
  return `${page.origin}${target.pathname}`;
}

/**
 * POST `body` (a JSON text) to a serve's proxyUrl. TF Serving's answers are
 * not envelopes: a refusal is `{"error": ...}`, returned rather than thrown
 * so the Try it box can show it.
 */
export async function predict(
  proxyUrl: string,
  body: string,
  settings?: ServerConnection.ISettings
): Promise<PredictAnswer> {
  const resolved = settingsOrDefault(settings);
  const url = proxyRequestUrl(proxyUrl, resolved);
  const response = await send(
    url,
    { method: 'POST', body, headers: { 'Content-Type': 'application/json' } },
    resolved
  );
  const text = await response.text();
  let error: string | null = null;
  if (!response.ok) {
    error = tfServingError(text) ?? `HTTP ${response.status}: ${text.slice(0, 200)}`;
  }
  return { ok: response.ok, status: response.status, text, error };
}

function tfServingError(text: string): string | null {
  try {
    const parsed: unknown = JSON.parse(text);
    if (typeof parsed === 'object' && parsed !== null && 'error' in parsed) {
      return String((parsed as { error: unknown }).error);
    }
  } catch {
    // Not JSON: the caller words it.
  }
  return null;
}
