// Typed contexts: the shell creates one store per service and the panels read them, no module singletons.
import { createContext } from 'svelte';
import type { ChatClient } from './chat.svelte.js';
import type { ExecSession } from './exec.svelte.js';
import type { FilesStore } from './files.svelte.js';
import type { HealthMonitor } from './health.svelte.js';
import type { Session } from './session.svelte.js';
import type { TimeSync } from './time-sync.svelte.js';

export const [getSession, setSession] = createContext<Session>();
export const [getHealth, setHealth] = createContext<HealthMonitor>();
export const [getChat, setChat] = createContext<ChatClient>();
export const [getFiles, setFiles] = createContext<FilesStore>();
export const [getExec, setExec] = createContext<ExecSession>();
export const [getTimeSync, setTimeSync] = createContext<TimeSync>();
