// A module resolution hook (see register.mjs): inside .unit/, a relative
// import without an extension means `<name>.js` or `<name>/index.js`.

export async function resolve(specifier, context, next) {
  const relative = specifier.startsWith('./') || specifier.startsWith('../');
  if (relative && !/\.[cm]?js$/.test(specifier) && context.parentURL?.includes('/.unit/')) {
    for (const candidate of [`${specifier}.js`, `${specifier}/index.js`]) {
      try {
        return await next(candidate, context);
      } catch {
        // Try the next form.
      }
    }
  }
  return next(specifier, context);
}
