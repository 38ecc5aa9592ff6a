# The test oracle of r_server/R/lmer.R's disclosure pre-check (tests/test_lmer_precheck.py): the rule as it
# stood before the pre-check was made cheaper (commit b7c6498), kept verbatim under .oracle_* names and
# sourced into an environment whose parent is the bridge's, so that it runs the server's own helpers
# (.ds_resolve, .ds_check_formula_variables, .lmer_model_variables, .lmer_control) and nothing else changes.

# Counts of all / complete rows over the model variables (dsBase's Ntotal, Nvalid, Nmissing).
# A `X$y` variable is also copied into the session as `y`, as dsBase does.
.oracle_counts <- function(formula, dataName, env) {
  varnames <- character(0)
  for (variable in .lmer_model_variables(formula)) {
    pieces <- strsplit(variable, "$", fixed = TRUE)[[1L]]
    last <- pieces[[length(pieces)]]
    if (length(pieces) > 1L) assign(last, .ds_resolve(variable, env), envir = env)
    varnames <- c(varnames, last)
  }
  varnames <- unique(varnames)
  if (!is.null(dataName)) {
    qualified <- paste0(dataName, "$", varnames)
    varnames <- ifelse(varnames %in% c("0", "1"), varnames, qualified)
  }
  all.data <- do.call(cbind, unname(lapply(varnames, .ds_resolve, env = env)))
  Ntotal <- dim(all.data)[1]
  complete <- stats::complete.cases(all.data)
  Nvalid <- dim(all.data[complete, ])[1]
  list(Ntotal = Ntotal, Nvalid = Nvalid, Nmissing = Ntotal - Nvalid)
}

# TRUE when a vector with exactly two distinct non-missing values has a category smaller than
# nfilter.tab.
.oracle_binary_too_small <- function(v, nfilter.tab) {
  # dsBase: a vector with two distinct values fails when the smaller count of table(v) is below
  # nfilter.tab. table() counts the levels of factor(v), i.e. values by their 15-digit text: two
  # doubles with the same text make one level holding every non-missing value. Counted here with
  # match() instead of building the factor (the same counts, without formatting every value).
  present <- v[stats::complete.cases(v)]
  values <- unique(present)
  if (length(values) != 2L) return(FALSE)
  if (identical(as.character(values[1L]), as.character(values[2L]))) return(length(present) < nfilter.tab)
  min(tabulate(match(present, values), nbins = 2L)) < nfilter.tab
}

# The glm pre-check on lme4::nobars(formula): oversaturation and binary y / X / weights / offset.
.oracle_disclosure_checks <- function(formula2use, dataDF, env, thr) {
  nfilter.tab <- as.numeric(thr$nfilter.tab)
  nfilter.glm <- as.numeric(thr$nfilter.glm)
  # glm (model.frame) finds offset.to.use / weights.to.use in the formula's environment, the
  # session, exactly as in dsBase.
  formula2use.glm <- lme4::nobars(formula2use)
  .ds_check_formula_variables(formula2use.glm, dataDF, env)  # session and data only (security)
  mod.glm.ds <- stats::glm(formula2use.glm, family = "gaussian", x = TRUE,
                           offset = offset.to.use, weights = weights.to.use, data = dataDF)
  X.mat <- mod.glm.ds$x
  num.p <- as.numeric(dim(X.mat)[2])
  num.N <- as.numeric(dim(X.mat)[1])
  out <- list(gos = NULL, y = NULL, x = NULL, w = NULL, o = NULL)
  if (num.p > (nfilter.glm * num.N)) {
    out$gos <- paste0("ERROR: Model is oversaturated (too many model parameters relative to sample size)",
                      "leading to a possible risk of disclosure - please simplify model. With ",
                      num.p, " parameters and nfilter.glm = ", round(nfilter.glm, 4), " you need ",
                      round((num.p / nfilter.glm), 0), " observations")
  }
  if (.oracle_binary_too_small(mod.glm.ds$y, nfilter.tab)) {
    out$y <- "ERROR: y (response) vector is binary with one category less than filter threshold for table cell size"
  }
  for (pj in seq_len(num.p)) {
    if (.oracle_binary_too_small(X.mat[, pj], nfilter.tab)) {
      out$x <- "ERROR: at least one column in X matrix is binary with one category less than filter threshold for table cell size"
    }
  }
  if (!is.null(mod.glm.ds$prior.weights) && .oracle_binary_too_small(mod.glm.ds$prior.weights, nfilter.tab)) {
    out$w <- "ERROR: weights vector is binary with one category less than filter threshold for table cell size"
  }
  if (!is.null(mod.glm.ds$offset) && .oracle_binary_too_small(mod.glm.ds$offset, nfilter.tab)) {
    out$o <- "ERROR: offset vector is binary with one category less than filter threshold for table cell size"
  }
  out
}

# Everything lmerSLMADS2 and lmerSLMADS.assign do before the fit. Leaves offset.to.use and
# weights.to.use in the session (the server functions remove them on exit with .lmer_tidy()).
.oracle_prepare <- function(formula, offset, weights, dataName, control_type, control_value.transmit, optimizer) {
  env <- .ds_session()
  thr <- .ds_thr()
  dataDF <- if (is.null(dataName)) NULL else .ds_resolve(dataName, env)
  if (!inherits(formula, "formula")) stop("the formula argument is not a formula", call. = FALSE)
  formula2use <- formula
  counts <- .oracle_counts(formula2use, dataName, env)
  assign("offset.to.use", if (is.null(offset)) NULL else cbind(.ds_resolve(offset, env)), envir = env)
  assign("weights.to.use", if (is.null(weights)) NULL else cbind(.ds_resolve(weights, env)), envir = env)
  checks <- .oracle_disclosure_checks(formula2use, dataDF, env, thr)
  risky <- any(!vapply(checks, is.null, logical(1)))
  list(env = env, dataDF = dataDF, formula2use = formula2use, counts = counts, checks = checks,
       disclosure.risk = if (risky) 1 else 0,
       control.obj = if (risky) NULL else .lmer_control(control_type, control_value.transmit, optimizer))
}


# What a pre-check reaches for one input: the counts, the checks and the risk, or the error message.
# The error is its message and its call as try() prints it (the oracle's own function names read as
# the server's); the warnings raised on the way are part of the outcome too.
.precheck_outcome <- function(prepare, formula, offset, weights, session) {
  on.exit(.lmer_tidy(session), add = TRUE)
  warned <- character(0)
  outcome <- withCallingHandlers(
    tryCatch({
      prep <- prepare(formula, offset, weights, "D", NULL, NULL, NULL)
      list(counts = prep$counts, checks = prep$checks, risk = prep$disclosure.risk, control = prep$control.obj)
    }, error = function(e) {
      call <- conditionCall(e)
      where <- if (is.null(call)) "" else gsub(".oracle_", ".lmer_", deparse(call, nlines = 1L), fixed = TRUE)
      paste("ERROR:", conditionMessage(e), "IN:", where)
    }),
    warning = function(w) {
      warned <<- c(warned, conditionMessage(w))
      invokeRestart("muffleWarning")
    })
  list(outcome = outcome, warnings = warned)
}

# The server's pre-check (.lmer_prepare) and the oracle's on the same session: `cols` a named list of
# columns of D (those named in `factors` made factors with the given `levels`, unused ones included),
# `extra` named vectors put in the session beside D (weights, offsets), the formula as text.
.precheck_compare <- function(cols, factors, levels, extra, formula_text, offset, weights, thr) {
  for (name in factors) cols[[name]] <- factor(cols[[name]], levels = levels)
  session <- new.env(parent = globalenv())
  assign("D", as.data.frame(cols, stringsAsFactors = FALSE), envir = session)
  for (name in names(extra)) assign(name, extra[[name]], envir = session)
  formula <- stats::as.formula(formula_text, env = session)
  .ds_ctx$session <- session
  .ds_ctx$settings <- thr
  on.exit({ .ds_ctx$session <- NULL; .ds_ctx$settings <- NULL }, add = TRUE)
  ours <- .precheck_outcome(.lmer_prepare, formula, offset, weights, session)
  oracle <- .precheck_outcome(.oracle_prepare, formula, offset, weights, session)
  list(same = identical(ours, oracle), ours = utils::capture.output(str(ours)),
       oracle = utils::capture.output(str(oracle)),
       lean = .lean_compare(formula, offset, weights, session))
}

# The lean glm against glm() itself on one input: "fallback" when it leaves the input to glm(),
# "same" when what the pre-check reads (x, y, prior weights, offset) is identical() to glm()'s,
# "DIFFERENT" otherwise.
.lean_compare <- function(formula, offset, weights, session) {
  on.exit(.lmer_tidy(session), add = TRUE)
  assign("offset.to.use", if (is.null(offset)) NULL else cbind(get(offset, envir = session)), envir = session)
  assign("weights.to.use", if (is.null(weights)) NULL else cbind(get(weights, envir = session)), envir = session)
  formula.glm <- lme4::nobars(formula)
  dataDF <- get("D", envir = session)
  lean <- tryCatch(suppressWarnings(.lmer_glm_lean(formula.glm, dataDF)), error = function(e) "error")
  if (is.null(lean)) return("fallback")
  real <- tryCatch(suppressWarnings(stats::glm(formula.glm, family = "gaussian", x = TRUE,
                                               offset = offset.to.use, weights = weights.to.use, data = dataDF)),
                   error = function(e) "error")
  fields <- c("x", "y", "prior.weights", "offset")
  if (is.list(lean) && is.list(real) && identical(lean[fields], real[fields])) "same" else "DIFFERENT"
}

# The server's binary rule and the oracle's on one vector: c(ours, oracle).
.binary_compare <- function(v, nfilter.tab) c(.lmer_binary_too_small(v, nfilter.tab), .oracle_binary_too_small(v, nfilter.tab))
