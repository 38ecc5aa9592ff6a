# The other dsBase 6.3.0 server functions of the ds.lmerSLMA workflow.

# The allow-list (r_server/functions.py) maps dsBase's "exists" to this function.
# base::exists as DSLite runs it in a session: exists("D") looks in the session and the
# environments it inherits from; exists("y", X) looks among the columns of X.
ds_exists <- function(x, where) {
  if (missing(where)) return(exists(x, envir = .ds_session()))
  exists(x, where = where)
}

colnamesDS <- function(x) {
  colnames(.ds_resolve(x, param = "x"))
}

classDS <- function(x) {
  class(.ds_resolve(x, param = "x"))
}

isNaDS <- function(xvect) {
  out <- is.na(xvect)
  sum(out, na.rm = TRUE) == length(out)
}

checkNegValueDS <- function(weights) {
  length(which(weights < 0)) > 0
}

testObjExistsDS <- function(test.obj.name = NULL) {
  env <- .ds_session()
  if (exists(test.obj.name, envir = env)) {
    return(list(test.obj.exists = TRUE, test.obj.class = class(get(test.obj.name, envir = env))))
  }
  list(test.obj.exists = FALSE, test.obj.class = NULL)
}

messageDS <- function(message.object.name) {
  env <- .ds_session()
  if (!exists(message.object.name, envir = env)) {
    return("Error: the object <message.object.name> does not exist in this datasource")
  }
  obj <- .ds_resolve(message.object.name, env)
  if (!("list" %in% class(obj))) return("ALL OK: there are no studysideMessage(s) on this datasource")
  if (is.null(names(obj))) {
    return("Outcome object is a list without names. So a studysideMessage may be hidden. Please check output is OK")
  }
  if ("studysideMessage" %in% names(obj)) return("NOT ALL OK: there are studysideMessage(s) on this datasource")
  "ALL OK: there are no studysideMessage(s) on this datasource"
}

completeCasesDS <- function(x1.transmit) {
  chars <- strsplit(paste(strsplit(x1.transmit, split = ",")[[1L]], collapse = ""), split = "")[[1L]]
  n <- length(chars)
  unsafe <- !is.character(x1.transmit)
  if (n == 1L) {
    unsafe <- unsafe || chars[1L] %in% c("=", "<")
  } else if (n > 1L) {
    first <- chars[-n]
    second <- chars[-1L]
    unsafe <- unsafe || any(first == "=" | second == "=" | (first == "<" & second == "-") |
                              (first == ":" & second == ";"))
  }
  if (unsafe) {
    stop("FAILED: the object addressed by the x1.transmit argument is of an inappropriate class or it contains characters that could indicate malicious code. Where possible, please use standard alphanumerics in the elements of the clientside scalar/vector, or the name of the serverside scalar/vector, that is addressed by the x1.transmit argument. As a minimum you MUST avoid '=' and '<' as characters",
         call. = FALSE)
  }
  x1.use <- .ds_resolve(x1.transmit, param = "x1.transmit")
  complete.rows <- stats::complete.cases(x1.use)
  if (is.matrix(x1.use) || is.data.frame(x1.use)) return(x1.use[complete.rows, ])
  if (is.atomic(x1.use) || is.factor(x1.use)) return(x1.use[complete.rows])
  stop("FAILED: is x1 of wrong class. x1 argument must be a character string defining a serverside matrix, data.frame or vector",
       call. = FALSE)
}

dataFrameDS <- function(vectors = NULL, r.names = NULL, ch.rows = FALSE, ch.names = TRUE, clnames = NULL,
                        strAsFactors = TRUE, completeCases = FALSE) {
  .ds_check_permissive(c("permissive", "banana"))
  nfilter.subset <- as.numeric(.ds_thr()$nfilter.subset)
  if (!is.null(r.names)) r.names <- unlist(r.names)
  parts <- .ds_resolve_list(vectors)
  # data frames contribute their columns; the column names are replaced by clnames below
  names(parts) <- ifelse(vapply(parts, is.data.frame, logical(1)), "", make.names(names(parts)))
  dtemp0 <- do.call(data.frame, parts)
  dtemp <- data.frame(dtemp0, row.names = r.names, check.rows = ch.rows, check.names = ch.names,
                      stringsAsFactors = strAsFactors)
  colnames.act1 <- unlist(strsplit(clnames, split = ","))
  has.dollar <- grep("[$]", colnames.act1)
  if (length(has.dollar) > 0) {
    colnames.act1[has.dollar] <- vapply(strsplit(colnames.act1[has.dollar], "\\$", perl = TRUE),
                                        function(p) p[2], character(1))
  }
  colnames(dtemp) <- make.names(colnames.act1, unique = TRUE)
  dt <- if (completeCases) dtemp[stats::complete.cases(dtemp), ] else dtemp
  if (dim(dt)[1] < nfilter.subset) {
    stop("nfilter.trap: dataframe has less than nfilter.subset rows", call. = FALSE)
  }
  dt
}

.ds_boolean_operator <- function(n) {
  switch(as.character(n), "1" = `==`, "2" = `!=`, "3" = `<`, "4" = `<=`, "5" = `>`, "6" = `>=`, NULL)
}

# Elementwise comparison as dsBase's loop computes it (a double vector, NA kept).
.ds_compare <- function(V1, V2, operator.n) {
  op <- .ds_boolean_operator(operator.n)
  n <- length(V1)
  out <- integer(length = n)
  if (n > 0L) {
    other <- if (length(V2) == n) V2 else rep(V2, length.out = n)
    out <- as.numeric(op(V1, other)) * 1
  }
  out
}

BooleDS <- function(V1.name = NULL, V2.name = NULL, Boolean.operator.n = NULL, na.assign.text,
                    numeric.output = TRUE) {
  .ds_check_permissive(c("permissive", "banana"))
  V1 <- .ds_resolve(V1.name, param = "V1.name")
  V2 <- .ds_resolve(V2.name, param = "V2.name")
  if (is.character(V1)) {
    stop("FAILED: V_i is character, please convert to numeric, factor or logical before running Boole", call. = FALSE)
  }
  if (is.character(V2)) {
    stop("FAILED: V_ii is character, please convert to numeric, factor or logical before running Boole", call. = FALSE)
  }
  if (!((length(V1) == length(V2)) | (length(V2) == 1))) {
    stop("FAILED: V_ii must either be of length one or of length equal to V_i", call. = FALSE)
  }
  if (!is.numeric(Boolean.operator.n) | Boolean.operator.n == 0) {
    stop("FAILED: Boolean.operator specified incorrectly. Must be: '==', '!=', '<', '<=', '>' or '>='", call. = FALSE)
  }
  indicator <- .ds_compare(V1, V2, Boolean.operator.n)
  if (na.assign.text == "1") indicator[is.na(indicator)] <- 1
  if (na.assign.text == "0") indicator[is.na(indicator)] <- 0
  if (isTRUE(numeric.output)) indicator else as.logical(indicator)
}

.ds_numeric_cols <- function(cols, what) {
  if (is.null(cols)) return(NULL)
  values <- suppressWarnings(as.numeric(unlist(strsplit(cols, split = ","))))
  if (sum(is.na(values)) > 0) {
    stop(sprintf("FAILED: %s argument contains non-numerics (disclosure risk)", what), call. = FALSE)
  }
  values
}

# The common part of dataFrameSubsetDS1 and dataFrameSubsetDS2: the checks and the subset.
.ds_subset <- function(df.name, V1.name, V2.name, Boolean.operator.n, keep.cols, rm.cols, keep.NAs,
                       length.message) {
  .ds_check_permissive(c("permissive", "banana"))
  thr <- .ds_thr()
  nfilter.subset <- as.numeric(thr$nfilter.subset)
  nfilter.string <- as.numeric(thr$nfilter.string)
  keep <- .ds_numeric_cols(keep.cols, "keep.cols")
  rm.c <- .ds_numeric_cols(rm.cols, "rm.cols")
  for (arg in list(list(df.name, "df.name"), list(V1.name, "V[i].name"), list(V2.name, "V[ii].name"))) {
    if (!is.null(arg[[1]]) && nchar(arg[[1]]) > nfilter.string) {
      stop(sprintf("FAILED: %s argument > nfilter.string - please shorten", arg[[2]]), call. = FALSE)
    }
  }
  df2subset <- data.frame(.ds_resolve(df.name, call = as.call(list(as.name("data.frame"), .ds_ref_lang(df.name)))))
  if (V1.name == "ONES" || V2.name == "ONES") {
    V1 <- rep(1, length = dim(df2subset)[1])
    V2 <- V1
    Boolean.operator.n <- 1
  } else {
    V1 <- .ds_resolve(V1.name, param = "V1.name")
    V2 <- .ds_resolve(V2.name, param = "V2.name")
  }
  if (!is.character(df.name) || !is.data.frame(df2subset)) {
    stop("FAILED: df.name argument must be character and must name a data.frame", call. = FALSE)
  }
  if (!is.character(V1.name)) stop("FAILED: V[i].name must be character", call. = FALSE)
  if (!is.character(V2.name)) stop("FAILED: V[ii].name must be character", call. = FALSE)
  if (dim(df2subset)[1] != length(V1)) stop(length.message, call. = FALSE)
  if (!((length(V1) == length(V2)) || (length(V2) == 1))) {
    stop("FAILED: V[ii] must either be of length one or of length equal to V[i]", call. = FALSE)
  }
  if (!is.numeric(Boolean.operator.n) || Boolean.operator.n == 0) {
    stop("FAILED: Boolean.operator must be: '==', '!=', '<', '<=', '>' or '>='", call. = FALSE)
  }
  indicator <- .ds_compare(V1, V2, Boolean.operator.n)
  indicator[is.na(indicator)] <- if (keep.NAs) 1 else 0
  df.subset <- df2subset[(indicator == 1), ]
  if (dim(df.subset)[1] < nfilter.subset) {
    stop("Subset to be created is too small (<nfilter.subset)", call. = FALSE)
  }
  list(original = df2subset, subset = df.subset, keep = keep, rm = rm.c, nfilter.subset = nfilter.subset)
}

dataFrameSubsetDS1 <- function(df.name = NULL, V1.name = NULL, V2.name = NULL, Boolean.operator.n = NULL,
                               keep.cols = NULL, rm.cols = NULL, keep.NAs = NULL) {
  s <- .ds_subset(df.name, V1.name, V2.name, Boolean.operator.n, keep.cols, rm.cols, keep.NAs,
                  "FAILED: V[i] must of length equal to column length of df to be subsetted")
  difference <- abs(dim(s$subset)[1] - dim(s$original)[1])
  if ((difference < s$nfilter.subset) && (difference > 0)) {
    return(list(
      "Warning: DataSHIELD monitors every session for potentially disclosive analytic requests.",
      "The analysis you just submitted has generated a subset in which the number of elements",
      "differs - but only very slightly so - from the original data frame. This is most likely to be",
      "an innocent consequence of your subsetting needs. However, it could in theory be one step",
      "in a difference-based attack aimed at identifying individuals. This analytic request has",
      "therefore been highlighted in the session log file. Please be reassured, if you do not try",
      "to identify individuals this will cause you no difficulty. However, if you do plan a ",
      "malicious attempt to identify individuals by differencing, this will become obvious in the",
      "session log and you will be sanctioned. Possible consequences include loss of future access",
      "to DataSHIELD and/or legal penalties."))
  }
  "Subsetting undertaken without problems"
}

dataFrameSubsetDS2 <- function(df.name = NULL, V1.name = NULL, V2.name = NULL, Boolean.operator.n = NULL,
                               keep.cols = NULL, rm.cols = NULL, keep.NAs = NULL) {
  s <- .ds_subset(df.name, V1.name, V2.name, Boolean.operator.n, keep.cols, rm.cols, keep.NAs,
                  "FAILED: V[i] must of length equal to column length of df being subsetted")
  if (!is.null(s$keep) && !is.null(s$rm)) {
    stop("You can either specify keep.cols or rm.cols, not both", call. = FALSE)
  }
  if (!is.null(s$keep)) return(s$subset[, s$keep])
  if (!is.null(s$rm)) {
    numcols <- dim(s$original)[2]
    counts <- 2 - table(c(1:numcols, s$rm))
    return(s$subset[, rep(1:numcols, counts)])
  }
  s$subset
}

listDisclosureSettingsDS <- function() .ds_thr()

