"""The machinery every route and page of the web application shares (the application itself,
``sitewatch serve``, is :mod:`sitewatch.server`).

Public surface for a component's routers (import these, nothing else of another component):

- :mod:`sitewatch.web.deps`: ``SessionDep``, ``PrincipalDep``, ``require_roles``, ``ScopeDep``,
  ``LanguageDep``;
- :mod:`sitewatch.web.principal`: ``Role``, ``Principal``, ``CompoundScope``;
- :mod:`sitewatch.web.errors`: ``ApiError``, ``not_found``, ``forbidden``, ``conflict``,
  ``invalid``, ``RESPONSES``;
- :mod:`sitewatch.web.inputs`: ``Body``, ``Text``, ``LongText``, ``Finite``, ``SINGLE_LINE``;
- :mod:`sitewatch.web.component`: ``Component``, ``Periodic``.

:mod:`sitewatch.server` assembles the application from the components (docs/web.md).
"""
