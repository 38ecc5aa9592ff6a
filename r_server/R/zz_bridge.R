# The R side of r_server/rbridge.py: building values from call-tree nodes, running the allowed
# server functions with errors, warnings and messages caught. Results leave R serialized (wire.R).
# Nodes arrive as named lists made by the bridge (kind = "sym", "dollar", ...); they are turned into
# values or language objects by construction, never by parsing text.

# Run `expr`, returning list(ok, value, message, warnings, messages): R's bare condition message
# on error, warnings and messages collected (and muffled) instead of printed.
.ds_guard <- function(expr) {
  warnings <- character(0)
  messages <- character(0)
  result <- withCallingHandlers(
    tryCatch(list(ok = TRUE, value = expr),
             error = function(e) list(ok = FALSE, message = conditionMessage(e), call = .ds_error_call(e))),
    warning = function(w) {
      warnings <<- c(warnings, conditionMessage(w))
      invokeRestart("muffleWarning")
    },
    message = function(m) {
      messages <<- c(messages, conditionMessage(m))
      invokeRestart("muffleMessage")
    })
  result$warnings <- warnings
  result$messages <- messages
  result
}

# The call R reports for an error (deparse(), one line, as try() prints it), or character(0) when it
# is one of our own: a call of a function of r_server/R (.ds_*), of a function object (do.call of an
# allowed function) or of the lookup helpers; dsBase raises those without a call or in another one.
.ds_error_call <- function(e) {
  call <- conditionCall(e)
  if (!is.call(call)) return(character(0))
  head <- call[[1L]]
  if (!is.name(head) && !is.call(head)) return(character(0))
  if (is.name(head)) {
    name <- as.character(head)
    if (startsWith(name, ".ds_") || name %in% c("get", "do.call", "stop", "lapply", "FUN")) return(character(0))
    if (exists(name, envir = parent.env(environment()), inherits = FALSE)) return(character(0))
  }
  deparse(call, nlines = 1L)
}

.ds_arith <- list("+" = `+`, "-" = `-`, "*" = `*`, "/" = `/`, "^" = `^`)

# A numeric literal from its text, read by R's own number reader (R_strtod, as R's parser reads a
# literal), so "0.1" or "1e-320" are the same double here as in dsBase. The text was checked by
# the grammar (digits, one '.', an exponent, an optional leading '-'); anything else is refused.
.ds_number_text_re <- "^-?([0-9]+[.]?[0-9]*|[.][0-9]+)([eE][-+]?[0-9]+)?$"
.ds_integer_text_re <- "^-?[0-9]+L$"
.ds_number <- function(text) {
  if (is.character(text) && length(text) == 1L && grepl(.ds_integer_text_re, text)) {
    return(as.integer(sub("L$", "", text)))  # 1L, as deparse() writes an integer (the grammar bounds it)
  }
  if (!is.character(text) || length(text) != 1L || !grepl(.ds_number_text_re, text)) {
    stop("malformed number literal", call. = FALSE)
  }
  as.numeric(text)
}

# The value of an expression node in a session: literals, names, X$y, arithmetic. Names are looked
# up in the session only (inherits = FALSE): nothing of globalenv, base R or attached packages.
.ds_value <- function(node, env) {
  switch(node$kind,
    null = NULL,
    literal = node$value,
    number = .ds_number(node$text),
    sym = get(node$name, envir = env, inherits = FALSE),
    dollar = do.call(`$`, list(.ds_value(node$obj, env), node$name)),
    paren = .ds_value(node$inner, env),
    unary = {
      op <- .ds_arith[[node$op]]
      if (is.null(op) || !(node$op %in% c("+", "-"))) stop("unsupported unary operator", call. = FALSE)
      op(.ds_value(node$operand, env))
    },
    binary = {
      op <- .ds_arith[[node$op]]
      if (is.null(op)) stop(sprintf("unsupported operator '%s'", node$op), call. = FALSE)
      op(.ds_value(node$left, env), .ds_value(node$right, env))
    },
    formula = .ds_formula(node, env),
    list = {
      items <- lapply(node$items, .ds_value, env = env)
      if (any(nzchar(node$names))) names(items) <- node$names
      items
    },
    stop(sprintf("cannot evaluate a '%s' node here", node$kind), call. = FALSE))
}

# The language object of a node inside a formula.
.ds_lang <- function(node) {
  switch(node$kind,
    literal = node$value,
    number = .ds_number(node$text),
    sym = as.name(node$name),
    dollar = as.call(list(as.name("$"), .ds_lang(node$obj), as.name(node$name))),
    paren = as.call(list(as.name("("), .ds_lang(node$inner))),
    unary = as.call(list(as.name(node$op), .ds_lang(node$operand))),
    binary = as.call(list(as.name(node$op), .ds_lang(node$left), .ds_lang(node$right))),
    call = as.call(c(list(as.name(node$func)), lapply(node$args, .ds_lang))),
    stop(sprintf("a '%s' node cannot appear in a formula", node$kind), call. = FALSE))
}

# A formula object as stats::as.formula(text, env = session) makes it.
.ds_formula <- function(node, env) {
  parts <- list(as.name("~"))
  if (!is.null(node$lhs)) parts <- c(parts, list(.ds_lang(node$lhs)))
  f <- as.call(c(parts, list(.ds_lang(node$rhs))))
  class(f) <- "formula"
  attr(f, ".Environment") <- env
  f
}

# The variables of a formula's expression: root symbols, skipping a call's function position and the
# field name after `$` (D$BMI gives "D"; log(age) gives "age").
.ds_formula_roots <- function(expr) {
  if (is.name(expr)) return(as.character(expr))
  if (!is.call(expr)) return(character(0))
  head <- expr[[1L]]
  args <- as.list(expr)[-1L]
  if (identical(head, as.name("$"))) args <- args[1L]
  unique(unlist(lapply(args, .ds_formula_roots), use.names = FALSE))
}

# A formula may use as variables only columns of its data and symbols of the session: nothing of
# globalenv or base R (pi, letters, system...). Raises R's own message for the first other name,
# at the point where model.frame would look it up.
.ds_check_formula_variables <- function(formula, data, env) {
  columns <- if (is.data.frame(data)) colnames(data) else character(0)
  for (name in .ds_formula_roots(formula)) {
    if (!(name %in% columns) && !exists(name, envir = env, inherits = FALSE)) {
      stop(sprintf("object '%s' not found", name), call. = FALSE)
    }
  }
  invisible()
}

# The nodes of call trees sent by r_server/rbridge.py as one character vector of tokens in prefix order
# (rbridge.py: _tokens): each node is a named list of strings, built here by construction (no text is
# parsed), named `names` when given. Strings are data: a token is only ever compared with the kinds below.
.ds_nodes <- function(tokens, names) {
  i <- 0L
  take <- function() {
    if (i >= length(tokens)) stop("malformed call-tree tokens", call. = FALSE)
    i <<- i + 1L
    tokens[[i]]
  }
  node <- function() {
    kind <- take()
    switch(kind,
      null = list(kind = "null"),
      true = list(kind = "literal", value = TRUE),
      false = list(kind = "literal", value = FALSE),
      string = list(kind = "literal", value = take()),
      number = list(kind = "number", text = take()),
      sym = list(kind = "sym", name = take()),
      dollar = {
        obj <- node()
        list(kind = "dollar", obj = obj, name = take())
      },
      unary = {
        op <- take()
        list(kind = "unary", op = op, operand = node())
      },
      binary = {
        op <- take()
        left <- node()
        list(kind = "binary", op = op, left = left, right = node())
      },
      paren = list(kind = "paren", inner = node()),
      call = {
        func <- take()
        n <- as.integer(take())
        args <- vector("list", n)
        for (k in seq_len(n)) args[[k]] <- node()
        list(kind = "call", func = func, args = args)
      },
      formula = {
        lhs <- if (identical(take(), "lhs")) node() else NULL
        list(kind = "formula", lhs = lhs, rhs = node())
      },
      list = {
        n <- as.integer(take())
        item_names <- character(n)
        items <- vector("list", n)
        for (k in seq_len(n)) {
          item_names[[k]] <- take()
          items[[k]] <- node()
        }
        list(kind = "list", items = items, names = item_names)
      },
      stop("malformed call-tree tokens", call. = FALSE))
  }
  out <- list()
  while (i < length(tokens)) out[[length(out) + 1L]] <- node()
  if (!is.null(names)) names(out) <- names
  out
}

# The allow-lists, by kind: DataSHIELD name -> our R function. Empty until r_server/rbridge.py hands
# over r_server/functions.py's lists (.ds_allow, once per kind, when the bridge starts); nothing else
# can be run, whatever other functions exist here or in R.
.ds_allowed <- new.env(parent = emptyenv())

# Allow `names` as `kind` functions, each run by our R function of the same position in
# `implementations`, looked up among the functions of r_server/R only (never base R or packages).
.ds_allow <- function(kind, names, implementations) {
  if (!(kind %in% c("aggregate", "assign"))) stop("kind must be 'aggregate' or 'assign'", call. = FALSE)
  if (exists(kind, envir = .ds_allowed, inherits = FALSE)) {
    stop(sprintf("the %s allow-list is already set", kind), call. = FALSE)
  }
  here <- parent.env(environment())
  funs <- lapply(implementations, function(impl) {
    fun <- get0(impl, envir = here, mode = "function", inherits = FALSE)
    if (is.null(fun)) stop(sprintf("no R function '%s' in r_server/R for the allow-list", impl), call. = FALSE)
    fun
  })
  assign(kind, stats::setNames(funs, names), envir = .ds_allowed)
  invisible()
}

.ds_allow_list <- function(kind) {
  if (kind %in% c("aggregate", "assign")) get0(kind, envir = .ds_allowed, inherits = FALSE) else NULL
}

# Run an allowed server function of `kind` on argument nodes in a session.
.ds_invoke <- function(kind, name, args, session, settings) {
  .ds_guard({
    table <- .ds_allow_list(kind)
    fun <- if (name %in% names(table)) table[[name]] else NULL
    if (is.null(fun)) stop(sprintf("'%s' is not an allowed %s function", name, kind), call. = FALSE)
    values <- lapply(args, .ds_value, env = session)
    .ds_ctx$session <- session
    .ds_ctx$settings <- settings
    on.exit({
      .ds_ctx$session <- NULL
      .ds_ctx$settings <- NULL
    })
    do.call(fun, values, quote = TRUE)
  })
}

.ds_evaluate <- function(node, session) .ds_guard(.ds_value(node, session))

.ds_assign <- function(symbol, box, session) .ds_guard(invisible(assign(symbol, box[[1L]], envir = session)))

.ds_new_session <- function() new.env(parent = globalenv())

.ds_ls <- function(session) ls(envir = session, all.names = FALSE, sorted = TRUE)

.ds_rm <- function(symbol, session) .ds_guard(invisible(rm(list = symbol, envir = session)))

.ds_has <- function(symbol, session) exists(symbol, envir = session, inherits = FALSE)

.ds_columns <- function(symbol, session) {
  if (!exists(symbol, envir = session, inherits = FALSE)) return(NULL)
  x <- get(symbol, envir = session, inherits = FALSE)
  if (is.data.frame(x) || is.matrix(x)) colnames(x) else NULL
}

.ds_read_csv <- function(path) .ds_guard(utils::read.csv(path, header = TRUE))

# A CSV with its data dictionary (r_server/dictionary.py): each declared column read as its class, and a
# column with categories made a factor whose levels are the categories, in their order.
.ds_read_csv_typed <- function(path, names, classes, categories) {
  .ds_guard({
    categorical <- lengths(categories) > 0L
    classes[categorical] <- "character"  # a category is its name, whatever the value type
    df <- utils::read.csv(path, header = TRUE, colClasses = stats::setNames(classes, names))
    for (i in seq_along(names)) {
      if (length(categories[[i]]) && names[[i]] %in% colnames(df)) {
        df[[names[[i]]]] <- factor(as.character(df[[names[[i]]]]), levels = categories[[i]])
      }
    }
    df
  })
}

# -- study tables read in Python (r_server/tables.py), made a data frame here ------------------------------

# Strings from one raw vector: the values joined by `sep`, then `sep` and "." (strsplit drops a trailing
# empty piece; the sentinel keeps every value). No encoding mark: the bytes as scan() gives them.
.ds_split <- function(raw, sep, n) {
  x <- strsplit(rawToChar(raw), sep, fixed = TRUE)[[1L]]
  if (length(x) != n + 1L) stop("malformed table strings", call. = FALSE)
  x[seq_len(n)]
}

# One column: a vector as it is, or list(kind, raw, sep, n, na, codes) of strings. "text" is typed as
# read.table types a column (utils::type.convert after scan's NA), "character" and "factor" are Parquet's.
.ds_table_column <- function(spec) {
  if (!is.list(spec)) return(spec)
  x <- .ds_split(spec$raw, spec$sep, spec$n)
  if (spec$kind == "factor") {
    Encoding(x) <- "UTF-8"
    return(structure(spec$codes, levels = x, class = "factor"))
  }
  x[spec$na] <- NA_character_
  if (spec$kind == "character") {
    Encoding(x) <- "UTF-8"
    return(x)
  }
  utils::type.convert(x, as.is = TRUE, dec = ".", numerals = "allow.loss", na.strings = character(0L))
}

# read.table's column names of a CSV file: its header line as scan() reads it, made syntactic and unique.
.ds_csv_names <- function(path) {
  make.names(scan(path, what = "", sep = ",", quote = "\"", nlines = 1L, quiet = TRUE, skip = 0L,
                  strip.white = TRUE, blank.lines.skip = TRUE, na.strings = character(0L), comment.char = "",
                  allowEscapes = FALSE, encoding = "unknown", skipNul = FALSE), unique = TRUE)
}

# The data frame of a table's columns, built as read.table builds it (names, class, compact row names).
# `names` NULL: the CSV file `header`'s (read.csv reads a header it does not agree with).
.ds_table_frame <- function(columns, names, header, n) {
  .ds_guard({
    if (is.null(names)) names <- .ds_csv_names(header)
    if (length(names) != length(columns)) {
      utils::read.csv(header, header = TRUE)
    } else {
      n <- as.integer(n)
      data <- lapply(columns, function(spec) {
        x <- .ds_table_column(spec)
        if (length(x) > n) x[seq_len(n)] else x  # a vector made for every line, blank lines skipped
      })
      names(data) <- names
      class(data) <- "data.frame"
      attr(data, "row.names") <- .set_row_names(n)
      data
    }
  })
}

# DSLite's assignTable: keep the listed columns that exist, in the order given.
.ds_select <- function(df, variables) {
  .ds_guard({
    if (is.null(variables)) df else subset(df, select = variables[variables %in% colnames(df)])
  })
}

# BLAS and LAPACK as sessionInfo() gives them (its $BLAS and $LAPACK are these two calls), without the
# rest of sessionInfo(), which reads the DESCRIPTION file of every loaded package.
.ds_versions <- function() {
  blas <- as.character(extSoftVersion()["BLAS"])
  lapack <- La_library()
  list(R = R.version.string,
       lme4 = as.character(utils::packageVersion("lme4")),
       Matrix = as.character(utils::packageVersion("Matrix")),
       nloptr = as.character(utils::packageVersion("nloptr")),
       BLAS = if (length(blas) == 0L || is.na(blas)) "" else blas,
       LAPACK = if (length(lapack) == 0L || is.na(lapack)) "" else lapack,
       platform = R.version$platform)
}

# lme4's shared object and libR, for r_server/lme4_numerics.py
.ds_native_paths <- function() c(getLoadedDLLs()[["lme4"]][["path"]], file.path(R.home("lib"), "libR.so"))

# The names of the functions of `kind` that .ds_invoke runs (what the allow-list handed over).
.ds_methods <- function(kind) sort(names(.ds_allow_list(kind)))
