# dsBase 6.3.0's server functions for the objects of a session: listing, sizes, names, levels,
# conversions, removal, c/list, and ds.summary's checks. Our own R, with dsBase's disclosure checks
# and messages. Object names arrive as strings checked by r_server/functions.py and are resolved by
# lookup (.ds_resolve), never parsed.

# dsBase's lsDS: the session's objects (env.to.search 1, the session: what Opal's global environment
# is), optionally filtered by a glob in which the client wrote '*' as "_:A:_".
lsDS <- function(search.filter = NULL, env.to.search) {
  if (!identical(as.numeric(env.to.search), 1)) {
    stop("only the session's own objects can be listed (env.to.search = 1)", call. = FALSE)
  }
  env <- .ds_session()
  if (is.null(search.filter)) {
    return(list(environment.searched = "R_GlobalEnv", objects.found = ls(envir = env)))
  }
  filter <- gsub("_:A:_", "*", search.filter, fixed = TRUE)
  found <- ls(envir = env, pattern = utils::glob2rx(filter))
  list(environment.searched = "R_GlobalEnv", objects.found = found, search.filter.final = filter)
}

dimDS <- function(x) dim(.ds_resolve(x, param = "x"))

lengthDS <- function(x) length(.ds_resolve(x, param = "x"))

# dsBase's nfilter.stringShort test measures the length of strsplit()'s list (always 1), so it never
# refuses; we keep that behaviour.
namesDS <- function(xname.transmit) {
  list.obj <- .ds_resolve(xname.transmit, param = "xname.transmit")
  if (!is.list(list.obj)) {
    stop(paste0("The input object is not of class <list>", class(list.obj)), call. = FALSE)
  }
  names(list.obj)
}

levelsDS <- function(x) {
  .ds_check_permissive(c("permissive", "banana"))
  density <- as.numeric(.ds_thr()$nfilter.levels.density)
  out <- levels(x)
  if ((length(x) * density) < length(out)) {
    stop("FAILED: Result length less than nfilter.levels.density of input length.", call. = FALSE)
  }
  list(Levels = out, ValidityMessage = "VALID ANALYSIS")
}

# dsBase's rmDS: names that are not in the session are "missing"; a name only base R has cannot be
# removed from the session ("caused problems", as rm() leaves it in place in dsBase).
rmDS <- function(x.names.transmit) {
  env <- .ds_session()
  deleted <- character(0)
  missing <- character(0)
  problem <- character(0)
  for (x.name in unlist(strsplit(x.names.transmit, split = ","))) {
    if (exists(x.name, envir = env, inherits = FALSE)) {
      rm(list = x.name, envir = env)
      deleted <- c(deleted, x.name)
    } else if (exists(x.name, envir = baseenv())) {
      problem <- c(problem, x.name)
    } else {
      missing <- c(missing, x.name)
    }
  }
  msg <- "Object(s)"
  if (length(deleted)) msg <- paste0(msg, " '", paste(deleted, collapse = ","), "' was deleted.")
  if (length(missing)) msg <- paste0(msg, " '", paste(missing, collapse = ","), "' which are missing.")
  if (length(problem)) msg <- paste0(msg, " '", paste(problem, collapse = ","), "' which caused problems.")
  list(return.message = msg, deleted.objects = paste(deleted, collapse = ","),
       missing.objects = paste(missing, collapse = ","), problem.objects = paste(problem, collapse = ","))
}

# dsBase's asListDS (an aggregate that also creates `newobj` in the session).
asListDS <- function(x.name, newobj) {
  if (!is.character(x.name)) stop("ERROR: x.name must be specified as a character string", call. = FALSE)
  if (!grepl(.ds_name_re, newobj)) stop("newobj must be an R name", call. = FALSE)
  value <- as.list(.ds_resolve(x.name, param = "x.name"))
  assign(newobj, value, envir = .ds_session())
  list(return.message = paste0("New object <", newobj, "> created"),
       class.of.newobj = paste0("Class of <", newobj, "> is '", class(value), "'"))
}

asCharacterDS <- function(x.name) as.character(.ds_resolve(x.name, param = "x.name"))

asIntegerDS <- function(x.name) {
  if (!is.character(x.name)) stop("ERROR: x.name must be specified as a character string", call. = FALSE)
  as.integer(as.character(.ds_resolve(x.name, param = "x.name")))
}

asLogicalDS <- function(x.name) {
  if (!is.character(x.name)) stop("ERROR: x.name must be specified as a character string", call. = FALSE)
  x <- .ds_resolve(x.name, param = "x.name")
  if (!is.numeric(x) && !is.integer(x) && !is.character(x) && !is.matrix(x)) {
    stop("ERROR: for ds.asLogical function, x.name must specify an input object of class numeric, integer, character or matrix",
         call. = FALSE)
  }
  as.logical(x)
}

asDataMatrixDS <- function(x.name) {
  if (!is.character(x.name)) stop("ERROR: x.name must be specified as a character string", call. = FALSE)
  data.matrix(.ds_resolve(x.name, param = "x.name"))
}

# dsBase's cDS: blocked unless "permissive" or "avocado"; fewer than nfilter.tab values give NULL
# (dsBase tests length(x == 0), which is the length of x: a short non-empty vector is NULL too).
cDS <- function(objs) {
  .ds_check_permissive(c("permissive", "avocado"))
  nfilter.tab <- as.numeric(.ds_thr()$nfilter.tab)
  x <- unlist(objs)
  if (length(x) < nfilter.tab) x <- if (length(x == 0)) c() else rep(NA, length(x))
  x
}

listDS <- function(input = NULL, eltnames = NULL) {
  mylist <- input
  names(mylist) <- unlist(eltnames)
  mylist
}

# The assigns c(...) (dsBase::vectorDS) and list(...) (base::list), as r_server/functions.py maps them.
ds_c <- function(...) {
  .ds_check_permissive(c("permissive", "banana"))
  c(...)
}

ds_list <- function(...) list(...)

numNaDS <- function(xvect) length(which(is.na(xvect)))

isValidDS <- function(obj) {
  nfilter.tab <- as.numeric(.ds_thr()$nfilter.tab)
  if (any(c("character", "integer", "logical", "numeric") %in% class(obj))) {
    return(!(length(obj) > 0 & length(obj) < nfilter.tab))
  }
  if ("factor" %in% class(obj)) {
    counts <- tabulate(obj)
    return(!any(counts > 0 & counts < nfilter.tab))
  }
  if (any(c("data.frame", "matrix") %in% class(obj))) {
    return(!(dim(obj)[1] > 0 & dim(obj)[1] < nfilter.tab))
  }
  FALSE
}

quantileMeanDS <- function(xvect) {
  if (!isValidDS(xvect)) return(NA)
  out <- c(stats::quantile(xvect, c(0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95), na.rm = TRUE), mean(xvect, na.rm = TRUE))
  names(out) <- c("5%", "10%", "25%", "50%", "75%", "90%", "95%", "Mean")
  out
}

table1DDS <- function(xvect) {
  nfilter.tab <- as.numeric(.ds_thr()$nfilter.tab)
  counts <- table(xvect)
  cells <- as.data.frame(t(as.numeric(counts)))
  out <- cbind(cells, sum(cells[1, ], na.rm = TRUE))
  colnames(out) <- c(names(counts), "Total")
  n <- dim(out)[2] - 1
  if (any(out[1, seq_len(n)] > 0 & out[1, seq_len(n)] < nfilter.tab)) {
    stop("invalid table - invalid counts present", call. = FALSE)
  }
  list(table = out, message = "valid Table")
}
