# lmerSLMADS2 (aggregate) and lmerSLMADS.assign (assign): dsBase 6.3.0 behaviour.
#
# The formula arrives as a formula object built by the bridge from the decoded call tree, with
# the session environment as its environment (dsBase: as.formula(text, env = parent.frame())).
# Where dsBase's variable names are visible in the result (the lmer `call` element) or leak into
# the session (offset.to.use, weights.to.use, and lme4's own `weights`/`offset`), the same names
# are used here on purpose.

# The variables of a formula as dsBase lists them: the deparsed formula with brackets removed and
# split at ~ + * / : | (so "(1 | g)" gives "1" and "g", and "D$x" stays "D$x").
.lmer_model_variables <- function(formula) {
  text <- paste(deparse(formula), collapse = " ")
  text <- gsub(" ", "", text, fixed = TRUE)
  text <- gsub("(", "", text, fixed = TRUE)
  text <- gsub(")", "", text, fixed = TRUE)
  text <- gsub("[~+*/:]", "|", text)
  text <- gsub("||", "|", text, fixed = TRUE)
  strsplit(text, "|", fixed = TRUE)[[1L]]
}

# Counts of all / complete rows over the model variables (dsBase's Ntotal, Nvalid, Nmissing).
# A `X$y` variable is also copied into the session as `y`, as dsBase does.
.lmer_counts <- function(formula, dataName, env) {
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
  # dsBase: dim(all.data[complete, ])[1]. For a matrix of two or more columns and any number of complete
  # rows but one, that is sum(complete) (an integer, as dim() is) without copying the rows; otherwise
  # (one column, one complete row: the subset drops to a vector and the count is NULL) the same subset.
  kept <- sum(complete)
  Nvalid <- if (is.matrix(all.data) && ncol(all.data) >= 2L && kept != 1L) kept else dim(all.data[complete, ])[1]
  list(Ntotal = Ntotal, Nvalid = Nvalid, Nmissing = Ntotal - Nvalid)
}

# TRUE when a vector with exactly two distinct non-missing values has a category smaller than
# nfilter.tab.
.lmer_binary_too_small <- function(v, nfilter.tab) {
  # dsBase: a vector with two distinct values fails when the smaller count of table(v) is below
  # nfilter.tab. table() counts the levels of factor(v), i.e. values by their 15-digit text: two
  # doubles with the same text make one level holding every non-missing value.
  # A plain double or integer vector (no class, no dim) is counted without building the factor or
  # hashing every value: the distinct values of unique() are those of `==` once NA and NaN are set
  # aside (unique() counts 0 and -0 as one value, as `==` does), so the first non-missing value, the
  # first value not equal to it and one pass each decide (without a missing value, two passes).
  # Anything else goes through unique() and match().
  plain <- (is.double(v) || is.integer(v)) && !is.object(v) && is.null(dim(v))
  if (!plain) return(.lmer_binary_too_small_any(v, nfilter.tab))
  head <- v[seq_len(min(length(v), 64L))]
  if (length(unique(head[!is.na(head)])) > 2L) return(FALSE)  # three values already: not binary
  if (length(v) > 0L && !anyNA(v)) {
    # no missing value: two comparisons, two counts (a vector of logicals each, nothing else allocated)
    is_a <- v == v[[1L]]
    n_a <- sum(is_a)
    if (n_a == length(v)) return(FALSE)
    second <- which.min(is_a)  # the first value not equal to the first
    n_b <- sum(v == v[[second]])
    if (n_a + n_b != length(v)) return(FALSE)
    if (identical(as.character(v[[1L]]), as.character(v[[second]]))) return(n_a + n_b < nfilter.tab)
    return(min(n_a, n_b) < nfilter.tab)
  }
  ok <- !is.na(v)  # TRUE for every value complete.cases() keeps (NA and NaN are missing)
  first <- match(TRUE, ok)
  if (is.na(first)) return(FALSE)
  is_a <- v == v[[first]]
  other <- ok & !is_a
  second <- match(TRUE, other)
  if (is.na(second)) return(FALSE)
  is_b <- v == v[[second]]
  if (any(other & !is_b)) return(FALSE)
  n_a <- sum(is_a, na.rm = TRUE)
  n_b <- sum(is_b, na.rm = TRUE)
  if (identical(as.character(v[[first]]), as.character(v[[second]]))) return(n_a + n_b < nfilter.tab)
  min(n_a, n_b) < nfilter.tab
}

# The same rule for any vector, by unique() and match() (the counts of table() without formatting
# every value).
.lmer_binary_too_small_any <- function(v, nfilter.tab) {
  present <- v[stats::complete.cases(v)]
  values <- unique(present)
  if (length(values) != 2L) return(FALSE)
  if (identical(as.character(values[1L]), as.character(values[2L]))) return(length(present) < nfilter.tab)
  min(tabulate(match(present, values), nbins = 2L)) < nfilter.tab
}

# The pre-check's glm() without glm.fit's bookkeeping. The pre-check reads four things of dsBase's
# glm(..., x = TRUE): the model matrix, y, the prior weights and the offset; and glm() either returns
# or fails. glm() itself runs here (model frame, model matrix, its checks on weights and offset), with
# `method` = .lmer_glm_fit_lean: glm.fit's own iterations for the gaussian family, the same expressions
# on the same numbers (.lm.fit is glm.fit's C_Cdqrls), without the residuals, QR copy, effects, R
# matrix and null deviance nobody reads. It answers only for a fit glm.fit ends cleanly: converged,
# finite coefficients and deviance at every iteration, an informative observation. Anything else (an
# error anywhere, a warning of glm.fit's, a step that glm.fit would halve, no convergence) gives NULL
# and the caller runs the real glm(), whose error (text and call) or result is then dsBase's.
# Warnings met on the way (model.frame's) are raised again after a clean fit, as glm() raises them.
.lmer_glm_lean <- function(formula2use.glm, dataDF) {
  caught <- list()
  fit <- tryCatch(
    withCallingHandlers(
      stats::glm(formula2use.glm, family = "gaussian", x = TRUE, method = .lmer_glm_fit_lean,
                 offset = offset.to.use, weights = weights.to.use, data = dataDF),
      warning = function(w) {
        caught[[length(caught) + 1L]] <<- w
        invokeRestart("muffleWarning")
      }),
    error = function(e) NULL)
  if (is.null(fit)) return(NULL)
  for (w in caught) warning(w)
  fit
}

.lmer_glm_unclear <- function() stop("glm.fit would not end cleanly", call. = FALSE)

# glm.fit(), non-empty models of the gaussian family, up to the end of its iterations. Returns what
# glm() and the pre-check read; stops (-> the real glm) wherever glm.fit would stop, warn or halve.
.lmer_glm_fit_lean <- function(x, y, weights = NULL, start = NULL, etastart = NULL, mustart = NULL,
                               offset = NULL, family = stats::gaussian(), control = list(),
                               intercept = TRUE, singular.ok = TRUE) {
  control <- do.call(stats::glm.control, control)
  if (!identical(family$family, "gaussian") || !identical(family$link, "identity") ||
      !is.matrix(x) || !is.double(x) || ncol(x) == 0L || !is.null(start) || !is.null(etastart) ||
      !(is.double(y) || is.integer(y)) || is.object(y) || !is.null(dim(y)) || control$trace ||
      !singular.ok) {
    .lmer_glm_unclear()
  }
  # names never change a number: the iterations run on unnamed copies (no row names carried along)
  ynames <- names(y)
  names(y) <- NULL
  dimnames(x) <- NULL
  nobs <- NROW(y)
  no_offset <- is.null(offset)
  if (is.null(weights)) weights <- rep.int(1, nobs)
  if (no_offset) offset <- rep.int(0, nobs)
  if (anyNA(weights)) .lmer_glm_unclear()
  # gaussian: linkfun, linkinv the identity; mu.eta() and variance() all ones, so glm.fit's checks on
  # V(mu) and d(mu)/d(eta) never fire, `good` is weights > 0 at every iteration, and its divisions and
  # multiplications by those ones change no double (x / 1, x * 1 and 1^2 are exact): they are left out.
  # eta - 0 is eta for every double (x + 0 is not: -0 + 0 is 0), so no offset is no subtraction.
  eta <- if (is.null(mustart)) y else mustart  # family$initialize: mustart is y unless given
  mu <- eta
  devold <- sum(weights * ((y - mu)^2))  # dev.resids
  good <- weights > 0
  if (!any(good)) .lmer_glm_unclear()
  every <- all(good)
  w <- sqrt(if (every) weights else weights[good])  # the same every iteration
  ones <- all(w == 1)  # then every weight is 1 (sqrt(v) == 1 only for v == 1)
  xg <- if (every) x else x[good, , drop = FALSE]
  xw <- if (ones) xg else xg * w  # glm.fit's x[good, , drop = FALSE] * w
  tol <- min(1e-7, control$epsilon / 1000)
  conv <- FALSE
  for (iter in 1L:control$maxit) {
    z <- (if (no_offset && is.double(eta)) eta else eta - offset) + (y - mu)
    if (!every) z <- z[good]
    fit <- .lm.fit(xw, if (ones) z else z * w, tol)
    if (any(!is.finite(fit$coefficients))) .lmer_glm_unclear()
    start[fit$pivot] <- fit$coefficients
    eta <- drop(x %*% start)
    mu <- eta <- eta + offset
    dev <- sum(if (ones) (y - mu)^2 else weights * ((y - mu)^2))
    if (!is.finite(dev)) .lmer_glm_unclear()
    if (abs(dev - devold) / (0.1 + abs(dev)) < control$epsilon) {
      conv <- TRUE
      break
    }
    devold <- dev
  }
  if (!conv) .lmer_glm_unclear()
  names(mu) <- ynames
  names(weights) <- ynames
  names(y) <- ynames
  list(fitted.values = mu, deviance = dev, converged = conv, prior.weights = weights, y = y)
}

# The glm pre-check on lme4::nobars(formula): oversaturation and binary y / X / weights / offset.
.lmer_disclosure_checks <- function(formula2use, dataDF, env, thr) {
  nfilter.tab <- as.numeric(thr$nfilter.tab)
  nfilter.glm <- as.numeric(thr$nfilter.glm)
  # glm (model.frame) finds offset.to.use / weights.to.use in the formula's environment, the
  # session, exactly as in dsBase.
  formula2use.glm <- lme4::nobars(formula2use)
  .ds_check_formula_variables(formula2use.glm, dataDF, env)  # session and data only (security)
  mod.glm.ds <- .lmer_glm_lean(formula2use.glm, dataDF)
  if (is.null(mod.glm.ds)) {
    mod.glm.ds <- stats::glm(formula2use.glm, family = "gaussian", x = TRUE,
                             offset = offset.to.use, weights = weights.to.use, data = dataDF)
  }
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
  if (.lmer_binary_too_small(mod.glm.ds$y, nfilter.tab)) {
    out$y <- "ERROR: y (response) vector is binary with one category less than filter threshold for table cell size"
  }
  for (pj in seq_len(num.p)) {
    if (.lmer_binary_too_small(X.mat[, pj], nfilter.tab)) {
      out$x <- "ERROR: at least one column in X matrix is binary with one category less than filter threshold for table cell size"
    }
  }
  if (!is.null(mod.glm.ds$prior.weights) && .lmer_binary_too_small(mod.glm.ds$prior.weights, nfilter.tab)) {
    out$w <- "ERROR: weights vector is binary with one category less than filter threshold for table cell size"
  }
  if (!is.null(mod.glm.ds$offset) && .lmer_binary_too_small(mod.glm.ds$offset, nfilter.tab)) {
    out$o <- "ERROR: offset vector is binary with one category less than filter threshold for table cell size"
  }
  out
}

.lmer_disclosure_outlist <- function(checks) {
  element <- function(key, name) if (is.null(checks[[key]])) NULL else stats::setNames(list(checks[[key]]), name)
  list(list(errorMessage.1 = "ERROR: Model failed in this source because of an enhanced risk of disclosure"),
       list(errorMessage.2 = "The following message(s) identify the cause of this enhanced risk"),
       element("gos", "errorMessage.gos"), element("y", "errorMessage.y"), element("x", "errorMessage.x"),
       element("w", "errorMessage.w"), element("o", "errorMessage.o"),
       disclosure.risk = 1)
}

# dsBase pastes the control value into R text and parses it back, so a double goes through
# as.character (15 significant digits): reproduce that rounding without parsing anything.
.lmer_control <- function(control_type, control_value.transmit, optimizer) {
  control.obj <- lme4::lmerControl()
  if (!is.null(control_type)) {
    if (!is.null(control_value.transmit)) {
      control_value <- if (is.numeric(control_value.transmit)) control_value.transmit
                       else as.numeric(control_value.transmit)
    } else {
      control_value <- NULL
    }
    # the text "NA" reads back as a logical NA (lme4 then fails: REAL() can only be applied to a 'numeric')
    as_pasted <- function(v) if (length(v) == 1L && is.na(v) && !is.nan(v)) NA else as.numeric(as.character(v))
    if (identical(control_type, "check.conv.grad")) {
      if (is.null(control_value)) control_value <- 2.0e-3
      control.obj <- lme4::lmerControl(
        check.conv.grad = lme4::.makeCC("warning", tol = as_pasted(control_value), relTol = NULL))
    }
    if (identical(control_type, "xtol_rel")) {
      if (is.null(control_value)) control_value <- 1.0e-7
      control.obj <- lme4::lmerControl(optCtrl = list(xtol_rel = as_pasted(control_value)))
    }
  }
  if (!is.null(optimizer) && optimizer != "nloptwrap") control.obj$optimizer <- "nloptwrap"
  control.obj
}

# Young-generation collections at both ends of the checks, on large data only. Before them, the previous
# call's garbage (its fit, its answer) goes before the checks add theirs: R's peak cons cells 187 -> 143 MB
# at 100,000 rows (plain lmer: 148), the study's peak resident memory -24 MiB, CPU 0.97. After them, the
# checks' model frame, matrix and QR copies go while young, before the fit's allocations carry them into
# the old generations and full collections (the checks' own collections 75 -> 20 ms at 100,000 rows).
# Below 50,000 rows a fit hardly collects (GC 4 ms of a 61 ms fit at 5,000 rows, 10 of 217 at 20,000),
# and each collection (~4 ms) would only cost (8% of a 48 ms fit at 1,000 rows).
.lmer_young_gc <- function(dataDF) {
  if (NROW(dataDF) >= 50000L) invisible(gc(full = FALSE))
}

# Everything lmerSLMADS2 and lmerSLMADS.assign do before the fit. Leaves offset.to.use and
# weights.to.use in the session (the server functions remove them on exit with .lmer_tidy()).
.lmer_prepare <- function(formula, offset, weights, dataName, control_type, control_value.transmit, optimizer) {
  env <- .ds_session()
  thr <- .ds_thr()
  dataDF <- if (is.null(dataName)) NULL else .ds_resolve(dataName, env)
  .lmer_young_gc(dataDF)
  if (!inherits(formula, "formula")) stop("the formula argument is not a formula", call. = FALSE)
  formula2use <- formula
  counts <- .lmer_counts(formula2use, dataName, env)
  assign("offset.to.use", if (is.null(offset)) NULL else cbind(.ds_resolve(offset, env)), envir = env)
  assign("weights.to.use", if (is.null(weights)) NULL else cbind(.ds_resolve(weights, env)), envir = env)
  checks <- .lmer_disclosure_checks(formula2use, dataDF, env, thr)
  .lmer_young_gc(dataDF)
  risky <- any(!vapply(checks, is.null, logical(1)))
  list(env = env, dataDF = dataDF, formula2use = formula2use, counts = counts, checks = checks,
       disclosure.risk = if (risky) 1 else 0,
       control.obj = if (risky) NULL else .lmer_control(control_type, control_value.transmit, optimizer))
}

.lmer_tidy <- function(env) {
  suppressWarnings(rm(list = c("offset.to.use", "weights.to.use"), envir = env))
}

# The fields a fitted model's answer may carry (summary.merMod without residuals, plus dsBase's
# additions), in order: the answer is built from this allow-list, not by deleting what is known.
.lmer_result_fields <- c("methTitle", "objClass", "devcomp", "isLmer", "useScale", "logLik", "family", "link",
                         "ngrps", "coefficients", "sigma", "vcov", "varcor", "AICtab", "call", "fitMsgs",
                         "optinfo", "errorMessage", "disclosure.risk", "iterations", "control.info")
.lmer_allowed_fields <- function(outlist) {
  for (name in setdiff(names(outlist), .lmer_result_fields)) outlist[[name]] <- NULL
  outlist
}

lmerSLMADS2 <- function(formula, offset, weights, dataName, REML = TRUE,
                        control_type, control_value.transmit, optimizer, verbose = 0) {
  # offset.to.use / weights.to.use leave the session however the call ends (an error included)
  on.exit(.lmer_tidy(.ds_session()), add = TRUE)
  prep <- .lmer_prepare(formula, offset, weights, dataName, control_type, control_value.transmit, optimizer)
  if (prep$disclosure.risk != 0) {
    outlist <- .lmer_disclosure_outlist(prep$checks)
  } else {
    formula2use <- prep$formula2use
    dataDF <- prep$dataDF
    control.obj <- prep$control.obj
    iterations <- utils::capture.output(
      mg <- try(lme4::lmer(formula2use, offset = offset.to.use, weights = weights.to.use, data = dataDF,
                           REML = REML, verbose = verbose, control = control.obj)))
    if (inherits(mg, "try-error")) {
      outlist <- list(errorMessage = conditionMessage(attr(mg, "condition")), disclosure.risk = 1)
    } else {
      outlist <- summary(mg)
      outlist$residuals <- NULL
      outlist$errorMessage <- "No errors"
      outlist$disclosure.risk <- prep$disclosure.risk
      outlist$iterations <- iterations
      outlist$control.info <- control.obj
      outlist <- .lmer_allowed_fields(outlist)
    }
    outlist$Ntotal <- prep$counts$Ntotal
    outlist$Nvalid <- prep$counts$Nvalid
    outlist$Nmissing <- prep$counts$Nmissing
  }
  outlist
}

lmerSLMADS.assign <- function(formula, offset, weights, dataName, REML = TRUE,
                              control_type, control_value.transmit, optimizer, verbose = 0) {
  # offset.to.use / weights.to.use leave the session however the call ends (an error included)
  on.exit(.lmer_tidy(.ds_session()), add = TRUE)
  prep <- .lmer_prepare(formula, offset, weights, dataName, control_type, control_value.transmit, optimizer)
  if (prep$disclosure.risk != 0) {
    # dsBase 6.3.0 sets its result only when the checks pass and then returns it: a study that fails
    # them answers the assign with R's error for the missing object, and nothing is assigned.
    stop(simpleError("object 'outlist' not found"))
  }
  # dsBase 6.3.0 passes its own offset/weights arguments (the names sent by the client) to lmer,
  # so an offset or weights makes this fail as it does there.
  # the lmerMod keeps this call: the same variable names as dsBase's
  formula2use <- prep$formula2use
  dataDF <- prep$dataDF
  control.obj <- prep$control.obj
  outlist <- lme4::lmer(formula2use, offset = offset, weights = weights, data = dataDF,
                        REML = REML, verbose = verbose, control = control.obj)
  outlist
}
