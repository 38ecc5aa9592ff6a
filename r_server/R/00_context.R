# Our own implementation of the dsBase 6.3.0 server functions pydsbase answers.
# These files are sourced by r_server/rbridge.py into one private environment that is neither
# globalenv nor on the search path. A call's session environment and the study's disclosure
# settings reach the functions through .ds_ctx, set by the bridge for the duration of one call
# (calls are serialised by the bridge's lock). No R text received from a client is ever parsed
# or evaluated here: names sent as strings are resolved by .ds_resolve().

.ds_ctx <- new.env(parent = emptyenv())
.ds_ctx$session <- NULL
.ds_ctx$settings <- NULL

# The session environment of the current call (dsBase: the parent.frame() of a server function).
.ds_session <- function() {
  env <- .ds_ctx$session
  if (!is.environment(env)) stop("no session environment is active", call. = FALSE)
  env
}

# What dsBase::listDisclosureSettingsDS() returns, from the study's settings.
.ds_thr <- function() {
  thr <- .ds_ctx$settings
  if (!is.list(thr)) stop("no disclosure settings are active", call. = FALSE)
  thr
}

.ds_check_permissive <- function(levels) {
  level <- .ds_thr()$datashield.privacyControlLevel
  if (is.null(level) || !any(level %in% levels)) {
    # dsBase raises it with its call (call. = TRUE): Error in dsBase::checkPermissivePrivacyControlLevel(...)
    call <- as.call(list(quote(dsBase::checkPermissivePrivacyControlLevel), as.call(c(list(as.name("c")), levels))))
    stop(simpleError("BLOCKED: The server is running in 'non-permissive' mode which has caused this method to be blocked",
                     call = call))
  }
  invisible()
}

.ds_name_re <- "^([A-Za-z]|[.][A-Za-z._]|[.]$)[A-Za-z0-9._]*$"
.ds_number_re <- "^[-+]?([0-9]+[.]?[0-9]*|[.][0-9]+)([eE][-+]?[0-9]+)?$"

# The value dsBase gets by evaluating the text in the session (it parses it; we never do) for the texts DataSHIELD
# clients send: a name, a chain name$col$..., a number, TRUE/FALSE/NA/NULL. Anything else is refused.
# `param`: the name of dsBase's argument that held the text; a missing object is then reported as R
# reports it in dsBase, raised in eval(parse(text = <param>), envir = parent.frame()). `call`: another
# call to report it in (dsBase's data.frame(<text>)).
.ds_resolve <- function(text, env = .ds_session(), param = NULL, call = NULL) {
  if (is.numeric(text) || is.logical(text)) return(text)
  if (!is.character(text) || length(text) != 1L || is.na(text)) {
    stop("a name must be a single character string", call. = FALSE)
  }
  text <- trimws(text)
  if (grepl(.ds_number_re, text)) return(as.numeric(text))
  if (text %in% c("TRUE", "FALSE", "NA", "NULL")) {
    return(switch(text, "TRUE" = TRUE, "FALSE" = FALSE, "NA" = NA, "NULL" = NULL))
  }
  parts <- strsplit(text, "$", fixed = TRUE)[[1L]]
  if (length(parts) < 1L || !all(grepl(.ds_name_re, parts)) || endsWith(text, "$")) {
    stop(sprintf("'%s' is not the name of an object", text), call. = FALSE)
  }
  if (!exists(parts[[1L]], envir = env, inherits = FALSE) && (!is.null(param) || !is.null(call))) {
    if (is.null(call)) {
      call <- as.call(list(as.name("eval"), as.call(list(as.name("parse"), text = as.name(param))),
                           envir = quote(parent.frame())))
    }
    stop(simpleError(sprintf("object '%s' not found", parts[[1L]]), call = call))
  }
  value <- get(parts[[1L]], envir = env, inherits = FALSE)  # the session only, never base R
  for (part in parts[-1L]) value <- do.call(`$`, list(value, part))
  value
}

# The language object of a checked reference text ("D", "D$x$y"): built, never parsed.
.ds_ref_lang <- function(text) {
  parts <- strsplit(trimws(text), "$", fixed = TRUE)[[1L]]
  if (!length(parts) || !all(grepl(.ds_name_re, parts))) stop("not a name", call. = FALSE)
  out <- as.name(parts[[1L]])
  for (part in parts[-1L]) out <- as.call(list(as.name("$"), out, as.name(part)))
  out
}

# Several comma-separated names (dataFrameDS's "D,some.weights").
# A missing object is reported in dsBase's data.frame(<names>).
.ds_resolve_list <- function(text, env = .ds_session()) {
  tokens <- trimws(strsplit(text, ",", fixed = TRUE)[[1L]])
  call <- as.call(c(list(as.name("data.frame")), lapply(tokens, .ds_ref_lang)))
  values <- lapply(tokens, .ds_resolve, env = env, call = call)
  names(values) <- tokens
  values
}
