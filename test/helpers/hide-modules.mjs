// Loaded with `node --import ./test/helpers/hide-modules.mjs`: makes the packages named in
// HIDE_MODULES (comma-separated) unresolvable, as if they were not installed, for both
// import() and require().
import { register } from 'node:module';
import Module from 'node:module';

const hidden = new Set((process.env.HIDE_MODULES ?? '').split(',').filter(Boolean));
const owns = (spec) => [...hidden].some((name) => spec === name || spec.startsWith(`${name}/`));

register(
  `data:text/javascript,${encodeURIComponent(`
    const hidden = ${JSON.stringify([...hidden])};
    export async function resolve(spec, context, next) {
      if (hidden.some((n) => spec === n || spec.startsWith(n + '/'))) {
        const err = new Error("Cannot find package '" + spec + "' imported from " + context.parentURL);
        err.code = 'ERR_MODULE_NOT_FOUND';
        throw err;
      }
      return next(spec, context);
    }
  `)}`,
);

const resolveFilename = Module._resolveFilename;
Module._resolveFilename = function (request, ...rest) {
  if (owns(request)) {
    const err = new Error(`Cannot find module '${request}'`);
    err.code = 'MODULE_NOT_FOUND';
    throw err;
  }
  return resolveFilename.call(this, request, ...rest);
};
