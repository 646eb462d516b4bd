/**
 * What the sidebar shows, and when it asks the server again: a snapshot of
 * the registry and the serves, polled only while a serve is on its way
 * somewhere (PENDING, LOADING, DELETING), and the details (signature,
 * example request, metrics) of the AVAILABLE serves.
 *
 * The details cost one `GET /api/v1/serve/{name}/{version}` each, so they
 * are read only for AVAILABLE serves, and only:
 *   - for every AVAILABLE serve when the user refreshes (the panel is shown,
 *     Refresh, the `modelserve:refresh` command);
 *   - once for a serve a read sees AVAILABLE for the first time (a poll tick
 *     reads no others);
 *   - for the version an action was about (Serve, Stop, a Try it predict).
 * At most MAX_DETAIL_READS are on their way at a time.
 */
import { ServerConnection } from '@jupyterlab/services';
import { Poll } from '@lumino/polling';
import { ISignal, Signal } from '@lumino/signaling';

import {
  IN_PROGRESS_STATES,
  ModelVersion,
  Serve,
  ServeMetrics,
  Signature,
  describeServe,
  listModels,
  listServes,
  listVersions
} from './client';

export interface ModelEntry {
  name: string;
  /** Newest first. */
  versions: ModelVersion[];
}

/** What GET one adds to a serve; read for AVAILABLE serves only. */
export interface ServeDetails {
  signature: Signature | null;
  exampleRequest: Record<string, unknown> | null;
  metrics: ServeMetrics | null;
  /** Why the last read of them failed, or null. */
  error: string | null;
}

export interface Snapshot {
  models: ModelEntry[];
  /** Keyed by serveKey(name, version). */
  serves: Map<string, Serve>;
  /** Keyed by serveKey: the details read so far of the serves that are AVAILABLE. */
  details: Map<string, ServeDetails>;
}

export function serveKey(name: string, version: number): string {
  return `${name}/${version}`;
}

export function isInProgress(snapshot: Snapshot): boolean {
  for (const serve of snapshot.serves.values()) {
    if (IN_PROGRESS_STATES.has(serve.state)) {
      return true;
    }
  }
  return false;
}

/** The registered models with their versions, newest first. */
export async function loadModels(settings?: ServerConnection.ISettings): Promise<ModelEntry[]> {
  const models = await listModels(settings);
  const versions = await Promise.all(models.map(model => listVersions(model.name, settings)));
  return models.map((model, index) => ({
    name: model.name,
    versions: [...versions[index]].sort((a, b) => b.version - a.version)
  }));
}

export const POLL_INTERVAL_MS = 1000;

/** How many GET one reads of details may be on their way at a time. */
export const MAX_DETAIL_READS = 4;

/** Which details a read of the serves asks for, besides those of newly AVAILABLE serves. */
type DetailScope = 'all' | readonly string[];

export class ModelServeModel {
  constructor(private readonly settings?: ServerConnection.ISettings) {
    this._poll = new Poll({
      // A serve's state changes by itself, the registry does not: the poll reads serves only.
      // A failed read rejects, so the poll backs off (up to `max`) while the server fails.
      factory: async () => {
        // Until a first read succeeded there is no registry to show: keep asking for it.
        if (!(await this.read(this._models === null))) {
          throw new Error(this._listError ?? 'reading the serves failed');
        }
      },
      frequency: { interval: POLL_INTERVAL_MS, backoff: true, max: 30 * POLL_INTERVAL_MS },
      // Ticks run only while a serve is changing, or while a first read keeps
      // failing, and not at all while the browser tab is hidden; a settled
      // panel costs the server nothing.
      standby: () => (this.wantsPolling() ? 'when-hidden' : true),
      linger: 0,
      name: 'jupyter-modelserve:sidebar'
    });
  }

  get snapshot(): Snapshot | null {
    return this._snapshot;
  }

  /** The last server error, shown in the panel's alert area. */
  get error(): string | null {
    return this._error;
  }

  get changed(): ISignal<this, void> {
    return this._changed;
  }

  get isDisposed(): boolean {
    return this._poll.isDisposed;
  }

  /**
   * Read the registry and the serves again, as the user asked (Refresh, the
   * panel shown): an earlier action's error goes. Never rejects: a failure
   * becomes `error`.
   */
  async refresh(): Promise<void> {
    this._actionError = null;
    await this.read(true, 'all');
  }

  /**
   * Read the details of one version again (after a predict, its metrics
   * changed), if it is AVAILABLE. Never rejects.
   */
  async refreshDetails(name: string, version: number): Promise<void> {
    await this.requestDetails([serveKey(name, version)]);
  }

  /**
   * Read the serves, and the registry too when `registry`. Answers that
   * arrive after a newer read of the same thing started are dropped.
   * Then reads the details of newly AVAILABLE serves, and of `scope`.
   * Resolves to whether the read succeeded; never rejects.
   */
  private async read(registry: boolean, scope: DetailScope = []): Promise<boolean> {
    const serveTicket = ++this._serveTicket;
    const registryTicket = registry ? ++this._registryTicket : this._registryTicket;
    const current = (): boolean =>
      serveTicket === this._serveTicket || (registry && registryTicket === this._registryTicket);
    let fresh: string[] = [];
    let answered = true;
    try {
      const [serves, models] = await Promise.all([
        listServes(this.settings),
        registry ? loadModels(this.settings) : Promise.resolve(null)
      ]);
      if (models !== null && registryTicket === this._registryTicket) {
        this._models = models;
      }
      if (serveTicket === this._serveTicket) {
        this._serves = new Map(serves.map(s => [serveKey(s.modelName, s.modelVersion), s]));
        fresh = this.forgetDetailsOfUnavailable();
        // Only the newest read of the serves may say the server answers again.
        this._listError = null;
      }
    } catch (error) {
      if (!current()) {
        return false;
      }
      this._listError = messageOf(error);
      answered = false;
    }
    if (!current()) {
      return answered; // a newer read says what the panel shows
    }
    this._error = this._listError ?? this._actionError;
    this.publish();
    if (this._listError !== null) {
      return false;
    }
    await this.requestDetails(scope === 'all' ? this.availableKeys() : [...fresh, ...scope]);
    return true;
  }

  /**
   * Run an action, then read again: the serves only, unless the action
   * changes the registry too (`registry`), and the details of the version it
   * was `about` if that is AVAILABLE then. Its error stays in the alert area
   * until the next action succeeds or the user refreshes.
   */
  async act(
    action: () => Promise<unknown>,
    registry = false,
    about?: { name: string; version: number }
  ): Promise<void> {
    // A stop answers only once the backend confirmed: read meanwhile so the
    // badge shows DELETING, and the poll wakes up.
    const pending = action();
    void this.read(false).then(() => this.wakePoll());
    try {
      await pending;
      this._actionError = null;
    } catch (error) {
      this._actionError = messageOf(error);
    }
    await this.read(registry, about ? [serveKey(about.name, about.version)] : []);
    this.wakePoll();
  }

  /** Show an error that did not come from a list (e.g. a log read). */
  report(error: unknown): void {
    this._actionError = messageOf(error);
    this._error = this._actionError;
    this._changed.emit();
  }

  /** The keys of the AVAILABLE serves. */
  private availableKeys(): string[] {
    return [...this._serves].filter(([, s]) => s.state === 'AVAILABLE').map(([key]) => key);
  }

  /**
   * Drop the details of serves that are no longer AVAILABLE (they would be
   * stale once one is served again), and say which AVAILABLE serves have
   * none asked for yet.
   */
  private forgetDetailsOfUnavailable(): string[] {
    const available = new Set(this.availableKeys());
    for (const key of [...this._details.keys(), ...this._detailsAsked]) {
      if (!available.has(key)) {
        this._details.delete(key);
        this._detailsAsked.delete(key);
      }
    }
    return [...available].filter(key => !this._detailsAsked.has(key));
  }

  /**
   * Queue a read of the details of each AVAILABLE serve of `keys`; resolves
   * once they answered. A key already waiting in the queue is not queued
   * twice; one whose read was already sent is read again after it, so what
   * an action changed is seen.
   */
  private requestDetails(keys: Iterable<string>): Promise<void> {
    const waits: Promise<void>[] = [];
    for (const key of new Set(keys)) {
      if (this._serves.get(key)?.state !== 'AVAILABLE') {
        continue;
      }
      this._detailsAsked.add(key);
      let waiting = this._detailQueue.get(key);
      if (waiting === undefined) {
        let resolve = (): void => undefined;
        const done = new Promise<void>(r => (resolve = r));
        waiting = { done, resolve };
        this._detailQueue.set(key, waiting);
      }
      waits.push(waiting.done);
    }
    this.pumpDetails();
    return Promise.all(waits).then(() => undefined);
  }

  /** Send queued detail reads while fewer than MAX_DETAIL_READS are on their way. */
  private pumpDetails(): void {
    while (this._detailReadsInFlight < MAX_DETAIL_READS && this._detailQueue.size > 0) {
      const [key, waiting] = this._detailQueue.entries().next().value as [
        string,
        { done: Promise<void>; resolve: () => void }
      ];
      this._detailQueue.delete(key);
      this._detailReadsInFlight++;
      void this.readDetails(key).finally(() => {
        this._detailReadsInFlight--;
        waiting.resolve();
        this.pumpDetails();
      });
    }
  }

  /** GET one serve; its answer is kept if it is the newest for a serve still AVAILABLE. */
  private async readDetails(key: string): Promise<void> {
    const serve = this._serves.get(key);
    if (serve === undefined || serve.state !== 'AVAILABLE' || this.isDisposed) {
      return;
    }
    const ticket = ++this._detailTicket;
    this._detailTickets.set(key, ticket);
    let details: ServeDetails;
    try {
      const described = await describeServe(serve.modelName, serve.modelVersion, this.settings);
      details = {
        signature: described.signature ?? null,
        exampleRequest: described.exampleRequest ?? null,
        metrics: described.metrics ?? null,
        error: null
      };
    } catch (error) {
      // Keep what an earlier read said about the model; the counters are unknown now.
      const earlier = this._details.get(key);
      details = {
        signature: earlier?.signature ?? null,
        exampleRequest: earlier?.exampleRequest ?? null,
        metrics: null,
        error: messageOf(error)
      };
    }
    if (this._detailTickets.get(key) !== ticket || this._serves.get(key)?.state !== 'AVAILABLE') {
      return; // a newer read of it was sent, or it stopped meanwhile
    }
    this._details.set(key, details);
    this.publish();
  }

  /** A new snapshot of what is known (once the registry was read), and tell the view. */
  private publish(): void {
    if (this.isDisposed) {
      return;
    }
    if (this._models !== null) {
      this._snapshot = {
        models: this._models,
        serves: this._serves,
        details: new Map(this._details)
      };
    }
    this._changed.emit();
  }

  dispose(): void {
    this._poll.dispose();
    Signal.clearData(this);
  }

  private wantsPolling(): boolean {
    if (this._snapshot === null) {
      return this._listError !== null; // the first read failed: try again, backing off
    }
    return isInProgress(this._snapshot);
  }

  private wakePoll(): void {
    if (!this._poll.isDisposed) {
      void this._poll.refresh();
    }
  }

  private readonly _poll: Poll;
  private readonly _changed = new Signal<this, void>(this);
  private _snapshot: Snapshot | null = null;
  private _error: string | null = null;
  private _listError: string | null = null;
  private _actionError: string | null = null;
  private _models: ModelEntry[] | null = null;
  private _serves = new Map<string, Serve>();
  private _serveTicket = 0;
  private _registryTicket = 0;
  private readonly _details = new Map<string, ServeDetails>();
  /** AVAILABLE serves whose details were asked for since they became AVAILABLE. */
  private readonly _detailsAsked = new Set<string>();
  private readonly _detailQueue = new Map<string, { done: Promise<void>; resolve: () => void }>();
  private readonly _detailTickets = new Map<string, number>();
  private _detailTicket = 0;
  private _detailReadsInFlight = 0;
}

export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
