/** Every function of this package by name: what the image and the local runner can start. */
import collect from './collect/index.js';
import deadletter from './deadletter/index.js';
import save from './save/index.js';
import type { FunctionModule } from '../src/runtime/function.js';

export const functions: Record<string, FunctionModule> = { collect, save, deadletter };
export const functionNames = Object.keys(functions);
