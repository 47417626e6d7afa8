/** Every function of this package by name: what the image and the local runner can start. */
import aggregate from './aggregate/index.js';
import collect from './collect/index.js';
import deadletter from './deadletter/index.js';
import forecast from './forecast/index.js';
import notifications from './notifications/index.js';
import price from './price/index.js';
import retention from './retention/index.js';
import save from './save/index.js';
import type { FunctionModule } from '../src/runtime/function.js';

export const functions: Record<string, FunctionModule> = { collect, save, aggregate, price, forecast, notifications, deadletter, retention };
export const functionNames = Object.keys(functions);
