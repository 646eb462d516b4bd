/**
 * The sidebar's React view: pure rendering of a Snapshot, with the actions
 * passed in, so it renders the same in the browser and in unit tests.
 */
import { Button, refreshIcon } from '@jupyterlab/ui-components';
import React, { useEffect, useRef, useState } from 'react';

import { ModelVersion, PredictAnswer, Serve, ServeState } from './client';
import { Details } from './details';
import { ServeDetails, Snapshot, serveKey } from './model';

/** What the view may ask for; each returns once the server answered. */
export interface PanelActions {
  refresh(): void;
  serve(name: string, version: number): void;
  stop(name: string, version: number): void;
  /** Rejects with the server's message; the row shows nothing then. */
  logs(name: string, version: number): Promise<string[]>;
  /** Post `body` to the serve's proxyUrl; the panel then reads its metrics again. */
  predict(name: string, version: number, proxyUrl: string, body: string): Promise<PredictAnswer>;
  copy(text: string): void;
}

/** The request shown until (or unless) the server gave the version's exampleRequest. */
export const DEFAULT_REQUEST = '{"instances": [1.0, 2.0, 5.0]}';

/** The body of the curl line and of Try it: the server's example, else the default. */
export function exampleBody(details: ServeDetails | null): string {
  return details?.exampleRequest ? JSON.stringify(details.exampleRequest) : DEFAULT_REQUEST;
}

/** The panel shows at most this much of a curl line; Copy gives all of it. */
export const CURL_SHOWN_CHARS = 400;

/** The curl line that posts a request to a serve's TF Serving URL. */
export function curlCommand(url: string, body: string = DEFAULT_REQUEST): string {
  return `curl -X POST -H 'Content-Type: application/json' -d ${shellQuote(body)} ${shellQuote(url)}`;
}

/** A word for a POSIX shell: single-quoted, with its own single quotes escaped. */
function shellQuote(text: string): string {
  return `'${text.replace(/'/g, "'\\''")}'`;
}

export interface PanelProps {
  snapshot: Snapshot | null;
  error: string | null;
  actions: PanelActions;
}

export function ModelServePanel({ snapshot, error, actions }: PanelProps): JSX.Element {
  return (
    <div className="jp-ModelServe">
      <header className="jp-ModelServe-header">
        <h2 className="jp-ModelServe-title">Model Serving</h2>
        <Button
          minimal
          small
          className="jp-ModelServe-refresh"
          aria-label="Refresh"
          title="Refresh"
          onClick={() => actions.refresh()}
        >
          <refreshIcon.react tag="span" elementPosition="center" />
        </Button>
      </header>
      <div className="jp-ModelServe-error" role="alert">
        {error}
      </div>
      {snapshot === null ? (
        <p className="jp-ModelServe-empty">Loading…</p>
      ) : snapshot.models.length === 0 ? (
        <p className="jp-ModelServe-empty">
          No registered models yet. Right-click a SavedModel folder in the file browser and choose
          “Register as model…”.
        </p>
      ) : (
        snapshot.models.map(model => (
          <section
            key={model.name}
            className="jp-ModelServe-model"
            role="group"
            aria-label={model.name}
          >
            <h3 className="jp-ModelServe-modelName">{model.name}</h3>
            {model.versions.length === 0 ? (
              <p className="jp-ModelServe-empty">No versions.</p>
            ) : (
              model.versions.map(version => (
                <VersionRow
                  key={version.version}
                  version={version}
                  serve={snapshot.serves.get(serveKey(model.name, version.version)) ?? null}
                  details={snapshot.details.get(serveKey(model.name, version.version)) ?? null}
                  actions={actions}
                />
              ))
            )}
          </section>
        ))
      )}
    </div>
  );
}

const STATE_HELP: Record<ServeState, string> = {
  PENDING: 'Waiting for a model server',
  LOADING: 'The model server is loading this version',
  AVAILABLE: 'Serving predictions',
  FAILED: 'The serve failed',
  DELETING: 'Stopping'
};

export function StateBadge({ serve }: { serve: Serve | null }): JSX.Element {
  if (serve === null) {
    return (
      <span className="jp-ModelServe-badge" data-state="NONE" title="Not served">
        not served
      </span>
    );
  }
  return (
    <span
      className="jp-ModelServe-badge"
      data-state={serve.state}
      title={serve.reason ?? STATE_HELP[serve.state]}
    >
      {serve.state}
    </span>
  );
}

export interface VersionRowProps {
  version: ModelVersion;
  serve: Serve | null;
  /** Its signature, example request and metrics, once read (AVAILABLE serves only). */
  details?: ServeDetails | null;
  actions: PanelActions;
}

export function VersionRow({
  version,
  serve,
  details = null,
  actions
}: VersionRowProps): JSX.Element {
  const name = version.name;
  const n = version.version;
  const label = `${name} version ${n}`;
  const deleting = serve?.state === 'DELETING';
  return (
    <div className="jp-ModelServe-version" data-model={name} data-version={String(n)}>
      <div className="jp-ModelServe-versionHead">
        <span className="jp-ModelServe-versionNumber">v{n}</span>
        <StateBadge serve={serve} />
        <span className="jp-ModelServe-actions">
          {/* One button turns from Serve into Stop and back, the same element, so
              keyboard focus stays on it; a DELETING Stop is aria-disabled rather
              than disabled, which would drop the focus to the page. */}
          <Button
            key="toggle"
            small
            className={`jp-mod-styled ${serve === null ? 'jp-mod-accept' : 'jp-mod-warn'}`}
            aria-label={`${serve === null ? 'Serve' : 'Stop'} ${label}`}
            aria-disabled={deleting}
            onClick={() => {
              if (serve === null) {
                actions.serve(name, n);
              } else if (!deleting) {
                actions.stop(name, n);
              }
            }}
          >
            {serve === null ? 'Serve' : 'Stop'}
          </Button>
          {serve?.state === 'FAILED' && (
            <Button
              key="retry"
              small
              className="jp-mod-styled jp-mod-accept"
              aria-label={`Serve ${label}`}
              onClick={() => actions.serve(name, n)}
            >
              Serve
            </Button>
          )}
        </span>
      </div>
      {serve?.state === 'FAILED' && (
        <details className="jp-ModelServe-reason" open>
          <summary>Why it failed</summary>
          <p>{serve.reason ?? 'No reason was given.'}</p>
        </details>
      )}
      {serve?.state === 'AVAILABLE' && <Details details={details} label={label} />}
      {serve !== null && (
        <Endpoints serve={serve} body={exampleBody(details)} label={label} actions={actions} />
      )}
      {serve?.state === 'AVAILABLE' && serve.proxyUrl && (
        <TryIt
          name={name}
          version={n}
          proxyUrl={serve.proxyUrl}
          example={exampleBody(details)}
          label={label}
          actions={actions}
        />
      )}
      {serve !== null && <Logs name={name} version={n} label={label} actions={actions} />}
    </div>
  );
}

function Endpoints({
  serve,
  body,
  label,
  actions
}: {
  serve: Serve;
  body: string;
  label: string;
  actions: PanelActions;
}): JSX.Element | null {
  if (!serve.url && !serve.proxyUrl) {
    return null;
  }
  const curl = serve.url ? curlCommand(serve.url, body) : '';
  return (
    <dl className="jp-ModelServe-endpoints">
      {serve.url && (
        <>
          <dt>URL</dt>
          <dd>
            <code className="jp-ModelServe-url">{serve.url}</code>
            <CopyButton
              label={`Copy URL of ${label}`}
              text={serve.url!}
              copy={actions.copy}
            />
          </dd>
        </>
      )}
      {serve.proxyUrl && (
        <>
          <dt>Proxy URL</dt>
          <dd>
            <code className="jp-ModelServe-proxyUrl">{serve.proxyUrl}</code>
            <CopyButton
              label={`Copy proxy URL of ${label}`}
              text={serve.proxyUrl!}
              copy={actions.copy}
            />
          </dd>
        </>
      )}
      {serve.url && (
        <>
          <dt>curl</dt>
          <dd>
            <code className="jp-ModelServe-curl">
              {curl.length > CURL_SHOWN_CHARS
                ? `${curl.slice(0, CURL_SHOWN_CHARS)}… (${curl.length} characters: Copy gives all)`
                : curl}
            </code>
            <CopyButton label={`Copy curl command for ${label}`} text={curl} copy={actions.copy} />
          </dd>
        </>
      )}
    </dl>
  );
}

/** A copy button that says "Copied" for a moment, so a click is seen to have worked. */
function CopyButton({
  label,
  text,
  copy
}: {
  label: string;
  text: string;
  copy: (text: string) => void;
}): JSX.Element {
  const [copied, setCopied] = useState(false);
  useEffect(() => {
    if (!copied) {
      return;
    }
    const timer = setTimeout(() => setCopied(false), 1500);
    return () => clearTimeout(timer);
  }, [copied]);
  return (
    <Button
      small
      minimal
      aria-label={label}
      onClick={() => {
        copy(text);
        setCopied(true);
      }}
    >
      {copied ? 'Copied' : 'Copy'}
    </Button>
  );
}

/**
 * Try it: post a JSON request through the Jupyter server's proxy. The box
 * holds `example` (the server's example request once read) until the user
 * types in it.
 */
export function TryIt({
  name,
  version,
  proxyUrl,
  example,
  label,
  actions
}: {
  name: string;
  version: number;
  proxyUrl: string;
  example: string;
  label: string;
  actions: PanelActions;
}): JSX.Element {
  const [request, setRequest] = useState(example);
  const edited = useRef(false);
  useEffect(() => {
    if (!edited.current) {
      setRequest(example);
    }
  }, [example]);
  const [output, setOutput] = useState<{ text: string; failed: boolean } | null>(null);
  const [busy, setBusy] = useState(false);

  const onPredict = async (): Promise<void> => {
    try {
      JSON.parse(request);
    } catch (error) {
      setOutput({ text: `The request is not valid JSON: ${String(error)}`, failed: true });
      return;
    }
    setBusy(true);
    try {
      const answer = await actions.predict(name, version, proxyUrl, request);
      setOutput(
        answer.ok ? { text: answer.text, failed: false } : { text: answer.error!, failed: true }
      );
    } catch (error) {
      setOutput({ text: error instanceof Error ? error.message : String(error), failed: true });
    } finally {
      setBusy(false);
    }
  };

  return (
    <div className="jp-ModelServe-tryIt">
      <label className="jp-ModelServe-tryItLabel">
        Try it
        <textarea
          className="jp-ModelServe-request"
          aria-label={`Request for ${label}`}
          value={request}
          rows={3}
          spellCheck={false}
          onChange={event => {
            edited.current = true;
            setRequest(event.target.value);
          }}
        />
      </label>
      <Button
        small
        aria-label={`Predict with ${label}`}
        disabled={busy}
        onClick={() => void onPredict()}
      >
        Predict
      </Button>
      <output
        className="jp-ModelServe-prediction"
        role="status"
        aria-label={`Prediction of ${label}`}
        data-failed={output === null ? undefined : String(output.failed)}
      >
        {output?.text ?? ''}
      </output>
    </div>
  );
}

function Logs({
  name,
  version,
  label,
  actions
}: {
  name: string;
  version: number;
  label: string;
  actions: PanelActions;
}): JSX.Element {
  const [lines, setLines] = useState<string[] | null>(null);
  const latest = useRef(0);
  const onShow = async (): Promise<void> => {
    const ticket = ++latest.current; // an older, slower answer must not replace a newer one
    try {
      const answer = await actions.logs(name, version);
      if (ticket === latest.current) {
        setLines(answer);
      }
    } catch {
      // The model reported the error in the alert area.
    }
  };
  return (
    <div className="jp-ModelServe-logs">
      <Button small minimal aria-label={`Show logs of ${label}`} onClick={() => void onShow()}>
        {lines === null ? 'Show logs' : 'Reload logs'}
      </Button>
      {lines !== null && (
        <pre className="jp-ModelServe-logLines" aria-label={`Logs of ${label}`} tabIndex={0}>
          {lines.length === 0 ? '(no log lines yet)' : lines.join('\n')}
        </pre>
      )}
    </div>
  );
}
