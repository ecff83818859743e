"""What is written, from what is measured: claims from result records (``claims``), the filters
that print them (``filters``), the renderer of ``templates/`` (``render``) and the tables it
fills (``tables``), the report (``report``) and the figures (``figures``, ``plots``). Imports no
torch; the library and the experiments layer never import this package.
"""
