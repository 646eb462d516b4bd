/**
 * The sidebar widget: the React view over a ModelServeModel, with the
 * actions wired to the REST client.
 */
import { Clipboard } from '@jupyterlab/apputils';
import { ServerConnection } from '@jupyterlab/services';
import { ReactWidget, UseSignal } from '@jupyterlab/ui-components';
import { Message } from '@lumino/messaging';
import React from 'react';

import { logs, predict, serve, stop } from './client';
import { ModelServePanel, PanelActions } from './components';
import { ModelServeModel } from './model';

export const SIDEBAR_ID = 'jupyter-modelserve-sidebar';
export const SIDEBAR_LABEL = 'Model Serving';

export class ModelServeSidebar extends ReactWidget {
  constructor(
    readonly model: ModelServeModel,
    settings?: ServerConnection.ISettings
  ) {
    super();
    this.id = SIDEBAR_ID;
    this.addClass('jp-ModelServe-sidebar');
    this.title.caption = SIDEBAR_LABEL;
    this.node.setAttribute('aria-label', SIDEBAR_LABEL);
    this.node.setAttribute('role', 'region');
    this._actions = {
      refresh: () => void model.refresh(),
      serve: (name, version) =>
        void model.act(() => serve(name, version, settings), false, { name, version }),
      stop: (name, version) =>
        void model.act(() => stop(name, version, settings), false, { name, version }),
      logs: async (name, version) => {
        try {
          return await logs(name, version, 100, settings);
        } catch (error) {
          model.report(error);
          throw error;
        }
      },
      predict: async (name, version, proxyUrl, body) => {
        try {
          return await predict(proxyUrl, body, settings);
        } finally {
          // The request counted (or failed) at the model server: show the new metrics.
          void model.refreshDetails(name, version);
        }
      },
      copy: text => Clipboard.copyToSystem(text)
    };
  }

  protected render(): JSX.Element {
    return (
      <UseSignal signal={this.model.changed}>
        {() => (
          <ModelServePanel
            snapshot={this.model.snapshot}
            error={this.model.error}
            actions={this._actions}
          />
        )}
      </UseSignal>
    );
  }

  /**
   * The poll sleeps while nothing is on its way, so a serve made meanwhile
   * from a notebook or over REST would stay unseen: read again on each show.
   */
  protected onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    void this.model.refresh();
  }

  dispose(): void {
    this.model.dispose();
    super.dispose();
  }

  private readonly _actions: PanelActions;
}
