/**
 * What the sidebar shows, and when it asks the server again: a snapshot of
 * the registry and the serves, polled only while a serve is on its way
 * somewhere (PENDING, LOADING, DELETING).
 */
import { ServerConnection } from '@jupyterlab/services';
import { Poll } from '@lumino/polling';
import { ISignal, Signal } from '@lumino/signaling';

import {
  IN_PROGRESS_STATES,
  ModelVersion,
  Serve,
  listModels,
  listServes,
  listVersions
} from './client';

export interface ModelEntry {
  name: string;
  /** Newest first. */
  versions: ModelVersion[];
}

export interface Snapshot {
  models: ModelEntry[];
  /** Keyed by serveKey(name, version). */
  serves: Map<string, Serve>;
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
    await this.read(true);
  }

  /**
   * Read the serves, and the registry too when `registry`. Answers that
   * arrive after a newer read of the same thing started are dropped.
   * Resolves to whether the read succeeded; never rejects.
   */
  private async read(registry: boolean): Promise<boolean> {
    const serveTicket = ++this._serveTicket;
    const registryTicket = registry ? ++this._registryTicket : this._registryTicket;
    const current = (): boolean =>
      serveTicket === this._serveTicket || (registry && registryTicket === this._registryTicket);
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
        // Only the newest read of the serves may say the server answers again.
        this._listError = null;
      }
      if (!current()) {
        return true;
      }
      if (this._models !== null) {
        this._snapshot = { models: this._models, serves: this._serves };
      }
    } catch (error) {
      if (!current()) {
        return false;
      }
      this._listError = messageOf(error);
    }
    this._error = this._listError ?? this._actionError;
    this._changed.emit();
    return this._listError === null;
  }

  /**
   * Run an action, then read again: the serves only, unless the action
   * changes the registry too (`registry`). Its error stays in the alert area
   * until the next action succeeds or the user refreshes.
   */
  async act(action: () => Promise<unknown>, registry = false): Promise<void> {
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
    await this.read(registry);
    this.wakePoll();
  }

  /** Show an error that did not come from a list (e.g. a log read). */
  report(error: unknown): void {
    this._actionError = messageOf(error);
    this._error = this._actionError;
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
}

export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
