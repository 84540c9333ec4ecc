// Typed events: one events-map interface per class (event name → listener arguments), read by every
// EventEmitter method. Adding an event to a class is one line in its map.
//
// Why our own declarations rather than `EventEmitter<Map>` of @types/node: that generic does not exist
// before @types/node 20.11, and @types/node 25 changed what it means (unknown event names are accepted
// with `any` listeners there). And TLSConnection extends stream.Duplex, which takes no events map at all.
// Declared here, the types are the same whichever @types/node the user has.
import { EventEmitter } from 'node:events';

/** An events map: each event's listener arguments, as a labelled tuple. */
export type EventMap<M> = { [E in keyof M]: unknown[] };

/** The event names of the events map `M`. */
export type EventName<M> = keyof M & (string | symbol);

/** The listener of event `E` of the events map `M`. */
export type Listener<M extends EventMap<M>, E extends keyof M> = (...args: M[E]) => void;

/** The events every EventEmitter emits about its own listeners. */
export interface EmitterEvents {
  /** Before a listener is added. */
  newListener: [eventName: string | symbol, listener: (...args: unknown[]) => void];
  /** After a listener is removed. */
  removeListener: [eventName: string | symbol, listener: (...args: unknown[]) => void];
}

/**
 * An EventEmitter whose methods know the events of the map `M`: a listener must take the event's
 * arguments, `emit` must pass them, and an event name outside the map is a type error.
 */
// The interface of the same name below types the methods; the class adds nothing at run time.
// eslint-disable-next-line @typescript-eslint/no-unsafe-declaration-merging
export class TypedEventEmitter<M extends EventMap<M>> extends EventEmitter {}

export interface TypedEventEmitter<M extends EventMap<M>> {
  addListener<E extends EventName<M>>(event: E, listener: Listener<M, E>): this;
  on<E extends EventName<M>>(event: E, listener: Listener<M, E>): this;
  once<E extends EventName<M>>(event: E, listener: Listener<M, E>): this;
  prependListener<E extends EventName<M>>(event: E, listener: Listener<M, E>): this;
  prependOnceListener<E extends EventName<M>>(event: E, listener: Listener<M, E>): this;
  off<E extends EventName<M>>(event: E, listener: Listener<M, E>): this;
  removeListener<E extends EventName<M>>(event: E, listener: Listener<M, E>): this;
  removeAllListeners(event?: EventName<M>): this;
  emit<E extends EventName<M>>(event: E, ...args: M[E]): boolean;
  listeners<E extends EventName<M>>(event: E): Array<Listener<M, E>>;
  rawListeners<E extends EventName<M>>(event: E): Array<Listener<M, E>>;
  listenerCount<E extends EventName<M>>(event: E, listener?: Listener<M, E>): number;
}
